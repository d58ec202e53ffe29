//! What every route shares: body limits, problem bodies for unknown routes
//! and methods, health endpoints, and a graceful stop.

use crate::helpers::{ADMIN_TOKEN, assert_problem, spawn_app};
use serde_json::json;
use shopmesh_shared::events::{EventType, ProductId};
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let huge = json!({
            "name": "x".repeat(70 * 1024),
            "category": "books",
            "price_cents": 1,
            "stock": 1,
        });
        let response = app.post_product(&huge).await;
        assert_problem(response, 413, None).await;

        let id = app.create_product_id("Lamp", 1).await;
        let response = app
            .http
            .post(app.url(&format!("/products/{id}/ratings")))
            .bearer_auth(app.user_token(shopmesh_shared::events::UserId::new_v7()))
            .header("Content-Type", "application/json")
            .body(format!(
                "{{\"stars\": 5, \"pad\": \"{}\"}}",
                "p".repeat(100 * 1024)
            ))
            .send()
            .await
            .unwrap();
        assert_problem(response, 413, None).await;
        assert_eq!(app.product_count().await, 1, "{:?}", app.kind);
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problem_bodies() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let response = app.http.get(app.url("/nothing-here")).send().await.unwrap();
        assert_problem(response, 404, None).await;
        let response = app
            .http
            .delete(app.url(&format!("/products/{}", ProductId::new_v7())))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_problem(response, 405, None).await;
        let response = app.http.put(app.url("/products")).send().await.unwrap();
        assert_problem(response, 405, None).await;
    }
}

#[tokio::test]
async fn health_endpoints_answer() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        for path in ["/healthz", "/readyz"] {
            let response = app.http.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path} on {:?}", app.kind);
        }
    }
}

#[tokio::test]
async fn stopping_drains_the_outbox_and_leaves_nats_service_discovery() {
    for database in test_databases().await {
        let mut app = spawn_app(database).await;
        let id = app.create_product_id("Last words", 1).await;

        app.handle.stop(true).await;
        let outcome = app.run.take().unwrap().await.expect("the run task ends");
        assert!(outcome.is_ok(), "{outcome:?} on {:?}", app.kind);

        // What was committed before the stop was relayed during it.
        let created = app.events_of(EventType::ProductCreated).await;
        assert_eq!(created.len(), 1, "{:?}", app.kind);
        assert!(
            app.http
                .get(app.url(&format!("/products/{id}")))
                .send()
                .await
                .is_err()
        );
        let ping = app
            .backbone
            .client
            .request("$SRV.PING.product", "".into())
            .await;
        assert!(ping.is_err(), "nobody answers after the stop");
    }
}
