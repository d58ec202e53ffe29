//! Graceful shutdown through the server handle.

use crate::helpers::spawn_app;
use shopmesh_shared::events::EventType;
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn stopping_the_server_ends_run_until_stopped_after_relaying_the_outbox() {
    for database in test_databases().await {
        let mut app = spawn_app(database).await;
        app.register_user("ann@example.com", "Ann", "password123")
            .await;

        app.stop().await.expect("a clean stop");

        // Shutdown drains the outbox: the committed registration is published
        // by the time run_until_stopped returns.
        assert_eq!(app.stream_count().await, 1);
        let events = app.events().await;
        assert_eq!(events[0].1.event_type(), EventType::UserRegistered);

        // And the port no longer serves.
        let after = app.client.get(app.url("/healthz")).send().await;
        assert!(after.is_err(), "the server still answers after stopping");
    }
}

#[tokio::test]
async fn stopping_an_idle_server_returns_promptly() {
    for database in test_databases().await {
        let mut app = spawn_app(database).await;
        app.stop().await.expect("a clean stop");
    }
}
