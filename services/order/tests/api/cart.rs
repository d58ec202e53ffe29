use crate::helpers::{problem, spawn_app, token};
use serde_json::json;
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn the_cart_needs_a_valid_token() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let anonymous = app.get("/cart", None).await;
        assert_eq!(anonymous.status(), 401);
        assert_eq!(problem(anonymous).await["status"], 401);
        let forged = app.get("/cart", Some("v1.e30.AAAA")).await;
        assert_eq!(forged.status(), 401);
        let empty = app.get("/cart", Some(&token())).await;
        assert_eq!(empty.status(), 200);
        let body: serde_json::Value = empty.json().await.unwrap();
        assert_eq!(body, json!({ "items": [], "total_cents": 0 }));
    }
}

#[tokio::test]
async fn invalid_cart_items_are_rejected_naming_the_field_and_nothing_is_written() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let token = token();
        let product = uuid::Uuid::now_v7().to_string();
        let cases = [
            (json!({ "quantity": 1 }), "product_id"),
            (json!({ "product_id": product }), "quantity"),
            (
                json!({ "product_id": "pencil", "quantity": 1 }),
                "product_id",
            ),
            (json!({ "product_id": product, "quantity": 0 }), "quantity"),
            (
                json!({ "product_id": product, "quantity": 101 }),
                "quantity",
            ),
            (
                json!({ "product_id": product, "quantity": "two" }),
                "quantity",
            ),
        ];
        for (body, field) in cases {
            let response = app.post_json("/cart/items", &token, &body).await;
            assert_eq!(response.status(), 400, "{body}");
            assert_eq!(problem(response).await["field"], field, "{body}");
        }
        let not_json = app
            .http
            .post(app.url("/cart/items"))
            .bearer_auth(&token)
            .body("product_id=1")
            .send()
            .await
            .unwrap();
        assert_eq!(not_json.status(), 415);
        let huge = json!({ "product_id": "x".repeat(70_000), "quantity": 1 });
        assert_eq!(
            app.post_json("/cart/items", &token, &huge).await.status(),
            413
        );
        let cart: serde_json::Value = app.get("/cart", Some(&token)).await.json().await.unwrap();
        assert_eq!(cart["items"], json!([]));
    }
}

#[tokio::test]
async fn without_the_product_service_adding_is_503_and_changes_nothing() {
    for database in test_databases().await {
        // No product service runs on this nats-server: nobody answers.
        let app = spawn_app(database).await;
        let token = token();
        let body = json!({ "product_id": uuid::Uuid::now_v7().to_string(), "quantity": 1 });
        let response = app.post_json("/cart/items", &token, &body).await;
        assert_eq!(response.status(), 503);
        assert_eq!(problem(response).await["type"], "/problems/unavailable");
        let cart: serde_json::Value = app.get("/cart", Some(&token)).await.json().await.unwrap();
        assert_eq!(cart["items"], json!([]));
    }
}

#[tokio::test]
async fn removing_what_is_not_in_the_cart_is_404() {
    let app = spawn_app(shopmesh_shared::testkit::TestDatabase::sqlite()).await;
    let path = format!("/cart/items/{}", uuid::Uuid::now_v7());
    let response = app
        .http
        .delete(app.url(&path))
        .bearer_auth(token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(problem(response).await["field"], "product_id");
    let bad = app
        .http
        .delete(app.url("/cart/items/pencil"))
        .bearer_auth(token())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
