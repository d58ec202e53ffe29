use crate::helpers::{problem, spawn_app, token};
use serde_json::json;
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn checking_out_an_empty_cart_is_a_conflict() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let response = app.post_json("/orders", &token(), &json!({})).await;
        assert_eq!(response.status(), 409);
        assert_eq!(problem(response).await["type"], "/problems/empty-cart");
        assert_eq!(
            app.backbone.event_count().await,
            0,
            "no event for a refused checkout"
        );
    }
}

#[tokio::test]
async fn orders_start_empty_and_unknown_ids_are_404() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let token = token();
        let list: serde_json::Value = app.get("/orders", Some(&token)).await.json().await.unwrap();
        assert_eq!(list, json!({ "items": [] }));
        let unknown = app
            .get(&format!("/orders/{}", uuid::Uuid::now_v7()), Some(&token))
            .await;
        assert_eq!(unknown.status(), 404);
        let malformed = app.get("/orders/42", Some(&token)).await;
        assert_eq!(malformed.status(), 400);
        assert_eq!(problem(malformed).await["field"], "id");
        let cancel = app
            .post_json(
                &format!("/orders/{}/cancel", uuid::Uuid::now_v7()),
                &token,
                &json!({}),
            )
            .await;
        assert_eq!(cancel.status(), 404);
        assert_eq!(app.get("/orders", None).await.status(), 401);
    }
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_problem_bodies() {
    let app = spawn_app(shopmesh_shared::testkit::TestDatabase::sqlite()).await;
    let unknown = app.get("/nowhere", Some(&token())).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(problem(unknown).await["type"], "/problems/not-found");
    let wrong = app
        .http
        .put(app.url("/orders"))
        .bearer_auth(token())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "GET, POST");
    assert_eq!(problem(wrong).await["type"], "/problems/method-not-allowed");
}
