//! `POST /products`.

use crate::helpers::{ADMIN_TOKEN, assert_problem, assert_traceparent, product_body, spawn_app};
use serde_json::{Value, json};
use shopmesh_shared::events::{EventPayload, EventType, ProductId, UserId};
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn an_admin_creates_a_product_and_product_created_is_published() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let response = app
            .post_product(&product_body("  Desk Lamp  ", "home", 4_999, 12))
            .await;
        assert_eq!(response.status(), 201, "{:?}", app.kind);
        let id = response.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(id, format!("/products/{}", body["id"].as_str().unwrap()));
        let product_id = ProductId::parse(body["id"].as_str().unwrap()).unwrap();
        assert_eq!(body["name"], "Desk Lamp", "the name is trimmed");
        assert_eq!(body["category"], "home");
        assert_eq!(body["price_cents"], 4_999);
        assert_eq!(body["stock"], 12);
        assert_eq!(body["rating_count"], 0);
        assert_eq!(body["rating_mean"], 0.0);

        let fetched: Value = app
            .get_product(&product_id.to_string(), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fetched, body);

        let events = app.wait_for_events(EventType::ProductCreated, 1).await;
        assert_eq!(events.len(), 1, "{:?}", app.kind);
        let stored = &events[0];
        // No user: partition 0.
        assert_eq!(stored.subject, "shopmesh.events.product.created.0");
        assert_eq!(
            stored.header("Nats-Msg-Id"),
            Some(stored.event.meta.event_id.to_string().as_str())
        );
        assert_eq!(
            stored.header("Shopmesh-Event-Type"),
            Some("product.created")
        );
        assert_traceparent(stored.header("traceparent"));
        assert_eq!(stored.event.meta.producer, "product");
        assert_eq!(stored.event.meta.user_id, None);
        let EventPayload::ProductCreated(created) = &stored.event.payload else {
            panic!("{:?}", stored.event.payload);
        };
        assert_eq!(created.product_id, product_id);
        assert_eq!(created.name, "Desk Lamp");
        assert_eq!(created.category.as_str(), "home");
        assert_eq!(created.price_cents, 4_999);
        assert_eq!(created.stock, 12);
    }
}

#[tokio::test]
async fn creating_needs_the_admin_token() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let body = product_body("Lamp", "home", 100, 1);

        let missing = app.post_product_with(None, &body).await;
        assert_problem(missing, 401, None).await;

        let wrong = app
            .post_product_with(Some("not-the-admin-token"), &body)
            .await;
        assert_problem(wrong, 403, None).await;

        // A shopper's valid session token is not the admin token either.
        let user = app.user_token(UserId::new_v7());
        let shopper = app.post_product_with(Some(&user), &body).await;
        assert_problem(shopper, 403, None).await;

        let not_bearer = app
            .http
            .post(app.url("/products"))
            .header("Authorization", format!("Basic {ADMIN_TOKEN}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(not_bearer, 401, None).await;

        assert_eq!(app.product_count().await, 0, "{:?}", app.kind);
    }
}

#[tokio::test]
async fn every_invalid_field_is_a_400_naming_it_and_nothing_is_written() {
    let valid = || json!({ "name": "Lamp", "category": "home", "price_cents": 100, "stock": 1 });
    let with = |field: &str, value: Value| {
        let mut body = valid();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(&str, Value)> = vec![
        ("name", with("name", json!(""))),
        ("name", with("name", json!("   "))),
        ("name", with("name", json!("x".repeat(201)))),
        ("name", with("name", json!("line\nbreak"))),
        ("name", with("name", json!(42))),
        ("name", without("name")),
        ("category", with("category", json!("Books"))),
        ("category", with("category", json!(""))),
        ("category", with("category", json!("home garden"))),
        ("category", with("category", json!(null))),
        ("category", without("category")),
        ("price_cents", with("price_cents", json!(-1))),
        ("price_cents", with("price_cents", json!(100_000_001))),
        ("price_cents", with("price_cents", json!(9.99))),
        ("price_cents", with("price_cents", json!("100"))),
        ("price_cents", without("price_cents")),
        ("stock", with("stock", json!(-1))),
        ("stock", with("stock", json!(1_000_001))),
        ("stock", with("stock", json!(1.5))),
        ("stock", without("stock")),
    ];
    for database in test_databases().await {
        let app = spawn_app(database).await;
        for (field, body) in &cases {
            let response = app.post_product(body).await;
            let problem = assert_problem(response, 400, Some(field)).await;
            assert!(
                !problem["detail"].as_str().unwrap().is_empty(),
                "{field}: {problem}"
            );
        }
        // The limits themselves are accepted.
        app.create_product(&"y".repeat(200), "a-b_9", 100_000_000, 1_000_000)
            .await;
        app.create_product("Free sample", "grocery", 0, 0).await;
        assert_eq!(app.product_count().await, 2, "{:?}", app.kind);

        // Only the two valid creates reached the outbox and the stream.
        let events = app.wait_for_events(EventType::ProductCreated, 2).await;
        assert_eq!(events.len(), 2, "{:?}", app.kind);
        assert_eq!(app.events().await.len(), 2, "{:?}", app.kind);
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let not_json = app
            .http
            .post(app.url("/products"))
            .bearer_auth(ADMIN_TOKEN)
            .header("Content-Type", "text/plain")
            .body("name=Lamp")
            .send()
            .await
            .unwrap();
        assert_problem(not_json, 415, None).await;

        let broken = app
            .http
            .post(app.url("/products"))
            .bearer_auth(ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(r#"{"name": "Lamp", "#)
            .send()
            .await
            .unwrap();
        assert_problem(broken, 400, None).await;
        assert_eq!(app.product_count().await, 0, "{:?}", app.kind);
    }
}
