//! `POST /sessions`, and what logging in puts on the bus.

use crate::helpers::{
    CALLER_TRACE_ID, CALLER_TRACEPARENT, assert_event_headers, assert_problem, spawn_app,
    spawn_app_with, trace_id,
};
use serde_json::{Value, json};
use shopmesh_shared::events::{EventPayload, EventType, UserId, UserLoggedIn};
use shopmesh_shared::nats::headers::TRACEPARENT;
use shopmesh_shared::testkit::test_databases;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn logging_in_gives_a_token_that_opens_users_me() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let user = app
            .register_user("ann@example.com", "Ann", "password123")
            .await;
        let before = now_ms();
        // Logging in normalises the address as registering did.
        let session = app.session("  ANN@example.com ", "password123").await;
        let token = session["token"].as_str().expect("a token");
        let expires_at_ms = session["expires_at_ms"].as_i64().expect("an expiry");
        // The default lifetime is one hour; the token counts whole seconds.
        let hour = 3_600_000;
        assert!(
            (before + hour - 1_000..=now_ms() + hour).contains(&expires_at_ms),
            "{expires_at_ms}"
        );
        assert_eq!(expires_at_ms % 1000, 0);

        let me = app.me(token).await;
        assert_eq!(me.status(), 200);
        let me: Value = me.json().await.unwrap();
        assert_eq!(me, user);
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        app.register_user("ann@example.com", "Ann", "password123")
            .await;
        let wrong_password =
            assert_problem(app.login("ann@example.com", "password124").await, 401, None).await;
        let unknown_email = assert_problem(
            app.login("nobody@example.com", "password123").await,
            401,
            None,
        )
        .await;
        assert_eq!(wrong_password, unknown_email);
        let empty_password =
            assert_problem(app.login("ann@example.com", "").await, 401, None).await;
        assert_eq!(empty_password, unknown_email);
    }
}

#[tokio::test]
async fn login_bodies_are_validated() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        for (body, field) in [
            (json!({ "password": "password123" }), "email"),
            (json!({ "email": "ann@example.com" }), "password"),
            (
                json!({ "email": "not-an-email", "password": "password123" }),
                "email",
            ),
            (
                json!({ "email": "ann@example.com", "password": 5 }),
                "password",
            ),
        ] {
            assert_problem(app.post_json("/sessions", &body).await, 400, Some(field)).await;
        }
        let not_json = app
            .client
            .post(app.url("/sessions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=ann%40example.com&password=password123")
            .send()
            .await
            .unwrap();
        assert_problem(not_json, 415, None).await;
        let huge = json!({ "email": "ann@example.com", "password": "p".repeat(70 * 1024) });
        assert_problem(app.post_json("/sessions", &huge).await, 413, None).await;
    }
}

#[tokio::test]
async fn a_login_puts_one_user_logged_in_on_the_stream() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let user = app
            .register_user("ann@example.com", "Ann", "password123")
            .await;
        let id = UserId::parse(user["id"].as_str().unwrap()).unwrap();
        // Refused logins come first: they must emit nothing.
        app.login("ann@example.com", "wrong-password").await;
        app.login("nobody@example.com", "password123").await;
        let response = app
            .client
            .post(app.url("/sessions"))
            .header("traceparent", CALLER_TRACEPARENT)
            .json(&json!({ "email": "ann@example.com", "password": "password123" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let session: Value = response.json().await.unwrap();

        app.wait_for_events(2).await;
        let events = app.events().await;
        let logins: Vec<_> = events
            .iter()
            .filter(|(_, event)| event.event_type() == EventType::UserLoggedIn)
            .collect();
        assert_eq!(logins.len(), 1, "one login event, none for refused logins");
        let (message, event) = logins[0];
        assert_eq!(event.meta.user_id, Some(id));
        assert_eq!(event.meta.producer, "user");
        assert_eq!(
            event.payload,
            EventPayload::UserLoggedIn(UserLoggedIn {
                session_expires_at_ms: session["expires_at_ms"].as_i64().unwrap()
            })
        );
        assert_event_headers(message, event);
        let traceparent = message.headers.get(TRACEPARENT).unwrap().as_str();
        assert_eq!(trace_id(traceparent), CALLER_TRACE_ID);
        assert!(
            message
                .subject
                .starts_with("shopmesh.events.user.logged_in.")
        );
    }
}

#[tokio::test]
async fn no_password_token_or_email_reaches_the_stream() {
    let password = "Zq7!unique-passphrase-4711";
    for database in test_databases().await {
        let app = spawn_app(database).await;
        app.register_user("secret.ann@example.com", "Ann", password)
            .await;
        let session = app.session("secret.ann@example.com", password).await;
        let token = session["token"].as_str().unwrap().to_owned();
        let signature = token.rsplit('.').next().unwrap().to_owned();
        let hash: String = {
            use sqlx::Row;
            sqlx::query("SELECT password_hash FROM users")
                .fetch_one(&app.db)
                .await
                .unwrap()
                .try_get(0)
                .unwrap()
        };
        assert!(
            hash.starts_with("$argon2id$"),
            "stored as an argon2id PHC string"
        );
        assert!(!hash.contains(password));

        app.wait_for_events(2).await;
        let forbidden: [(&str, &[u8]); 5] = [
            ("password", password.as_bytes()),
            ("token", token.as_bytes()),
            ("token signature", signature.as_bytes()),
            ("password hash", hash.as_bytes()),
            ("e-mail address", b"secret.ann@example.com"),
        ];
        for (message, _) in app.events().await {
            let mut bytes = message.payload.to_vec();
            for (name, value) in message.headers.iter() {
                let name: &[u8] = name.as_ref();
                bytes.extend_from_slice(name);
                for value in value {
                    bytes.extend_from_slice(value.as_str().as_bytes());
                }
            }
            for (what, needle) in forbidden {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "the {what} appears in {}",
                    message.subject
                );
            }
        }
    }
}

#[tokio::test]
async fn the_production_argon2_cost_works_end_to_end() {
    for database in test_databases().await {
        // No cost overrides: the defaults (19 MiB, 2 iterations).
        let app = spawn_app_with(database, &[]).await;
        app.register_user("ann@example.com", "Ann", "password123")
            .await;
        let hash: String = {
            use sqlx::Row;
            sqlx::query("SELECT password_hash FROM users")
                .fetch_one(&app.db)
                .await
                .unwrap()
                .try_get(0)
                .unwrap()
        };
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        app.session("ann@example.com", "password123").await;
        assert_problem(app.login("ann@example.com", "password12").await, 401, None).await;
    }
}
