//! The `shopmesh` binary, run as a user would run it.

use shopmesh_shared::events::UserId;
use shopmesh_shared::subjects::{PartitionCount, partition_for};
use shopmesh_shared::testkit::NatsServer;
use std::process::{Command, Output};

fn shopmesh(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopmesh"));
    command
        .args(args)
        .env_remove("NATS_URL")
        .env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run shopmesh")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn provision_creates_the_streams_and_is_idempotent() {
    let server = NatsServer::start();
    let url = server.url();
    let env = [
        ("NATS_URL", url.as_str()),
        ("SHOPMESH_STREAM_MAX_AGE", "1d"),
    ];
    for _ in 0..2 {
        let output = shopmesh(&["provision", "--json"], &env);
        assert!(output.status.success(), "{}", stderr(&output));
        let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let events = report["events"].as_array().unwrap();
        assert_eq!(events.len(), 8, "a stream per partition");
        assert_eq!(events[7]["name"], "SHOPMESH_EVENTS_7");
        assert_eq!(events[7]["subjects"][0], "shopmesh.events.*.*.7");
        assert_eq!(events[7]["max_age_seconds"], 86_400);
        assert_eq!(events[7]["storage"], "file");
        assert_eq!(report["dead_letter"]["name"], "SHOPMESH_DEADLETTER");
    }
    let text = shopmesh(&["provision"], &env);
    assert!(
        stdout(&text).contains("SHOPMESH_EVENTS_7: subjects"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn an_invalid_setting_stops_with_the_variable_named() {
    let output = shopmesh(&["provision"], &[("SHOPMESH_PARTITIONS", "zero")]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("SHOPMESH_PARTITIONS"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn provision_without_a_server_fails_clearly() {
    let output = shopmesh(
        &["provision"],
        &[
            ("NATS_URL", "nats://127.0.0.1:1"),
            ("NATS_CONNECT_TIMEOUT", "1s"),
        ],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn partition_names_the_users_partition_and_subjects() {
    let user = UserId::new_v7();
    let expected = partition_for(Some(&user), PartitionCount::new(8).unwrap());
    let output = shopmesh(
        &["partition", &user.to_string()],
        &[("SHOPMESH_PARTITIONS", "8")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("partition {expected} of 8")),
        "{text}"
    );
    assert!(
        text.contains(&format!("shopmesh.events.*.*.{expected}")),
        "{text}"
    );

    let bad = shopmesh(&["partition", "bob"], &[]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("user id must be a UUID"),
        "{}",
        stderr(&bad)
    );
}

/// The upgrade from the single events stream of earlier versions: plain
/// provisioning refuses and names the way out; `--retire-single-stream`
/// refuses while a consumer has events left on it, then deletes it once
/// they are consumed and provisions a stream per partition.
#[tokio::test]
async fn provision_retires_the_single_stream_of_earlier_versions_once_consumed() {
    use async_nats::jetstream::{self, consumer::pull, stream};
    use futures::StreamExt;
    let server = NatsServer::start();
    let url = server.url();
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    let single = js
        .create_stream(stream::Config {
            name: "SHOPMESH_EVENTS".into(),
            subjects: vec!["shopmesh.events.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    js.publish("shopmesh.events.product.viewed.3", "event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let consumer: jetstream::consumer::PullConsumer = single
        .create_consumer(pull::Config {
            durable_name: Some("analytics-p003".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let env = [("NATS_URL", url.as_str())];

    let plain = shopmesh(&["provision"], &env);
    assert!(!plain.status.success());
    assert!(
        stderr(&plain).contains("shopmesh provision --retire-single-stream"),
        "{}",
        stderr(&plain)
    );
    let early = shopmesh(&["provision", "--retire-single-stream"], &env);
    assert!(!early.status.success());
    assert!(
        stderr(&early).contains("analytics-p003 (1 to deliver, 0 unacknowledged)"),
        "{}",
        stderr(&early)
    );
    assert!(js.get_stream("SHOPMESH_EVENTS").await.is_ok(), "kept");

    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let message = batch.next().await.unwrap().unwrap();
    message.double_ack().await.unwrap();
    let retired = shopmesh(&["provision", "--retire-single-stream", "--json"], &env);
    assert!(retired.status.success(), "{}", stderr(&retired));
    assert!(
        stderr(&retired).contains("retired SHOPMESH_EVENTS: 1 messages, 1 consumers"),
        "{}",
        stderr(&retired)
    );
    assert!(js.get_stream("SHOPMESH_EVENTS").await.is_err(), "deleted");
    let report: serde_json::Value = serde_json::from_str(&stdout(&retired)).unwrap();
    assert_eq!(report["events"].as_array().unwrap().len(), 8);
}
