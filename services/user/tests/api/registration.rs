//! `POST /users`.

use crate::helpers::{
    CALLER_TRACE_ID, CALLER_TRACEPARENT, WITHIN, assert_event_headers, assert_problem,
    registration, spawn_app, trace_id,
};
use serde_json::{Value, json};
use shopmesh_shared::events::{EventPayload, EventType, UserId, UserRegistered};
use shopmesh_shared::nats::headers::TRACEPARENT;
use shopmesh_shared::testkit::{eventually, test_databases};

#[tokio::test]
async fn registering_creates_the_user_and_one_user_registered_event() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let response = app
            .client
            .post(app.url("/users"))
            .header("traceparent", CALLER_TRACEPARENT)
            .json(&registration(
                "  Ann.Lee@Example.COM ",
                "  Ann Lee ",
                "correct horse battery",
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let user: Value = response.json().await.unwrap();
        let id = UserId::parse(user["id"].as_str().unwrap()).expect("the id is a UUID");
        assert_eq!(user["email"], "ann.lee@example.com", "normalised");
        assert_eq!(user["name"], "Ann Lee", "trimmed");
        assert!(user.get("password").is_none() && user.get("password_hash").is_none());
        assert_eq!(user.as_object().unwrap().len(), 3, "{user}");
        assert_eq!(app.count("users").await, 1);

        app.wait_for_events(1).await;
        let events = app.events().await;
        let (message, event) = &events[0];
        assert_eq!(event.event_type(), EventType::UserRegistered);
        assert_eq!(event.meta.user_id, Some(id));
        assert_eq!(event.meta.producer, "user");
        assert_eq!(
            event.payload,
            EventPayload::UserRegistered(UserRegistered {
                name: "Ann Lee".into()
            })
        );
        assert_event_headers(message, event);
        // The relay continues the trace of the request that registered.
        let traceparent = message.headers.get(TRACEPARENT).unwrap().as_str();
        assert_eq!(trace_id(traceparent), CALLER_TRACE_ID);
        assert!(
            message
                .subject
                .starts_with("shopmesh.events.user.registered.")
        );
    }
}

#[tokio::test]
async fn each_invalid_field_is_refused_by_name_and_nothing_is_written() {
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases: Vec<(Value, &str)> = vec![
        (registration("not-an-email", "Ann", "password123"), "email"),
        (registration("", "Ann", "password123"), "email"),
        (registration("ann@localhost", "Ann", "password123"), "email"),
        (registration("@example.com", "Ann", "password123"), "email"),
        (
            registration("a@b@example.com", "Ann", "password123"),
            "email",
        ),
        (
            registration("ann lee@example.com", "Ann", "password123"),
            "email",
        ),
        (registration(&long_email, "Ann", "password123"), "email"),
        (registration("ann@example.com", "", "password123"), "name"),
        (
            registration("ann@example.com", "   ", "password123"),
            "name",
        ),
        (
            registration("ann@example.com", &"n".repeat(101), "password123"),
            "name",
        ),
        (
            registration("ann@example.com", "Ann\u{7}Lee", "password123"),
            "name",
        ),
        (
            registration("ann@example.com", "Ann", "short12"),
            "password",
        ),
        (
            registration("ann@example.com", "Ann", &"p".repeat(129)),
            "password",
        ),
        (json!({ "name": "Ann", "password": "password123" }), "email"),
        (
            json!({ "email": "ann@example.com", "password": "password123" }),
            "name",
        ),
        (
            json!({ "email": "ann@example.com", "name": "Ann" }),
            "password",
        ),
        (
            json!({ "email": 42, "name": "Ann", "password": "password123" }),
            "email",
        ),
        (
            json!({ "email": "ann@example.com", "name": null, "password": "password123" }),
            "name",
        ),
        (
            json!({ "email": "ann@example.com", "name": "Ann", "password": 12345678 }),
            "password",
        ),
    ];
    for database in test_databases().await {
        let app = spawn_app(database).await;
        for (body, field) in &cases {
            let response = app.register(body).await;
            let problem = assert_problem(response, 400, Some(field)).await;
            assert_eq!(problem["type"], "/problems/validation", "{body}");
        }
        // The limits themselves are accepted.
        let edge_email = format!("{}@example.com", "a".repeat(254 - 12));
        app.register_user(&edge_email, &"n".repeat(100), &"p".repeat(128))
            .await;
        assert_eq!(app.count("users").await, 1, "only the valid registration");
        assert_eq!(app.count("shopmesh_outbox").await, 1, "only its event");
        app.wait_for_events(1).await;
    }
}

#[tokio::test]
async fn a_broken_body_is_refused_as_a_whole() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let malformed = app
            .client
            .post(app.url("/users"))
            .header("content-type", "application/json")
            .body("{\"email\": \"ann@example.com\", ")
            .send()
            .await
            .unwrap();
        let problem = assert_problem(malformed, 400, None).await;
        assert_eq!(problem["type"], "/problems/malformed-json");

        let not_json = app
            .client
            .post(app.url("/users"))
            .header("content-type", "text/plain")
            .body("email=ann@example.com")
            .send()
            .await
            .unwrap();
        assert_problem(not_json, 415, None).await;

        let no_content_type = app
            .client
            .post(app.url("/users"))
            .body(registration("ann@example.com", "Ann", "password123").to_string())
            .send()
            .await
            .unwrap();
        assert_problem(no_content_type, 415, None).await;

        // 64 KiB is the default limit.
        let huge = registration("ann@example.com", &"n".repeat(70 * 1024), "password123");
        let too_large = app.register(&huge).await;
        let problem = assert_problem(too_large, 413, None).await;
        assert_eq!(problem["type"], "/problems/payload-too-large");

        assert_eq!(app.count("users").await, 0);
        assert_eq!(app.count("shopmesh_outbox").await, 0);
    }
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_even_in_other_case() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        app.register_user("ann@example.com", "Ann", "password123")
            .await;
        for email in ["ann@example.com", "ANN@Example.com", "  Ann@EXAMPLE.com  "] {
            let response = app
                .register(&registration(email, "Another Ann", "different-password"))
                .await;
            let problem = assert_problem(response, 409, Some("email")).await;
            assert_eq!(problem["type"], "/problems/conflict");
        }
        assert_eq!(app.count("users").await, 1);
        assert_eq!(app.count("shopmesh_outbox").await, 1);
        // The first account keeps its password.
        app.session("ann@example.com", "password123").await;
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_exactly_one_account() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let attempts = (0..10).map(|i| {
            let email = if i % 2 == 0 {
                "race@example.com".to_owned()
            } else {
                format!("RACE@example.COM{}", " ".repeat(i))
            };
            let app = &app;
            async move {
                app.register(&registration(&email, &format!("Racer {i}"), "password123"))
                    .await
                    .status()
                    .as_u16()
            }
        });
        let mut statuses = futures::future::join_all(attempts).await;
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
        assert_eq!(app.count("users").await, 1);
        assert_eq!(app.count("shopmesh_outbox").await, 1);
        app.wait_for_events(1).await;
    }
}

#[tokio::test]
async fn other_methods_and_paths_get_problem_bodies() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let get = app.client.get(app.url("/users")).send().await.unwrap();
        assert_eq!(
            get.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        assert_problem(get, 405, None).await;
        let unknown = app.client.get(app.url("/nothing")).send().await.unwrap();
        assert_problem(unknown, 404, None).await;
    }
}

#[tokio::test]
async fn registration_and_login_keep_working_while_nats_is_down() {
    for database in test_databases().await {
        let mut app = spawn_app(database).await;
        app.backbone.server.kill();

        // The registration commits; its event waits in the outbox.
        app.register_user("ann@example.com", "Ann", "password123")
            .await;
        assert_eq!(app.count("shopmesh_outbox").await, 1);
        // A login does not wait for the bus: its behaviour event is published
        // if NATS comes back within the publisher's retries, else dropped.
        app.session("ann@example.com", "password123").await;
        eventually(WITHIN, "/readyz reports NATS down", async || {
            let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
            ready.status() == 503
        })
        .await;

        app.backbone.server.restart();
        // The relay publishes the waiting registration once NATS is back.
        let registered = async || {
            app.events()
                .await
                .iter()
                .filter(|(_, event)| event.event_type() == EventType::UserRegistered)
                .count()
        };
        eventually(WITHIN, "user.registered in the stream", async || {
            app.nats_answers().await && registered().await > 0
        })
        .await;
        assert_eq!(registered().await, 1, "published exactly once");
        eventually(WITHIN, "/readyz reports ready again", async || {
            let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
            ready.status() == 200
        })
        .await;
    }
}
