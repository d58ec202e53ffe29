//! Credentials written into `NATS_URL` (`nats://user:password@host`) log a
//! service in, and a refused connection's error names the server without
//! them. (async-nats alone ignores URL credentials and logs the URL, password
//! included, at debug level; `connect` moves them into the connect options.)

use shopmesh_shared::nats::connect;
use shopmesh_shared::settings::NatsSettings;
use shopmesh_shared::testkit::NatsServer;
use std::time::Duration;

fn settings(url: String) -> NatsSettings {
    NatsSettings {
        url,
        user: None,
        password: None,
        connect_timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_credentials_authenticate_and_stay_out_of_errors() {
    let server = NatsServer::start_with_password("shop", "url-password-1");
    let port = server.port();

    let client = connect(
        &settings(format!("nats://shop:url-password-1@127.0.0.1:{port}")),
        "url-credentials-test",
    )
    .await
    .expect("the URL's credentials are accepted");
    client.flush().await.unwrap();

    let refused = connect(
        &settings(format!("nats://127.0.0.1:{port}")),
        "url-credentials-test",
    )
    .await;
    assert!(refused.is_err(), "the server does ask for credentials");

    let wrong = connect(
        &settings(format!("nats://shop:wrong-password-2@127.0.0.1:{port}")),
        "url-credentials-test",
    )
    .await
    .expect_err("a wrong password is refused");
    let message = format!("{wrong} {wrong:?}");
    assert!(!message.contains("wrong-password-2"), "{message}");
    assert!(
        message.contains(&format!("nats://127.0.0.1:{port}")),
        "{message}"
    );
}
