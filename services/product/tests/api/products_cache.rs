//! The product cache: whatever this instance commits, its next read shows,
//! over HTTP and over the lookup RPC (the tests run with a one-hour time to
//! live, so a change the cache missed would be served stale).

use crate::helpers::{ADMIN_TOKEN, TestApp, release, reserve, spawn_app, stock as looked_up_stock};
use serde_json::{Value, json};
use shopmesh_shared::events::{OrderId, ProductId, UserId};
use shopmesh_shared::rpc::{ReserveLine, ReserveResponse};
use shopmesh_shared::testkit::test_databases;
use sqlx::Connection;

/// Stock and rating count as `GET /products/{id}` and the lookup RPC show
/// them; both must agree.
async fn seen(app: &TestApp, id: ProductId) -> (i64, i64) {
    let response = app.get_product(&id.to_string(), None).await;
    assert_eq!(response.status(), 200, "{:?}", app.kind);
    let body: Value = response.json().await.unwrap();
    let stock = body["stock"].as_i64().unwrap();
    assert_eq!(looked_up_stock(app, id).await, stock, "{:?}", app.kind);
    (stock, body["rating_count"].as_i64().unwrap())
}

#[tokio::test]
async fn every_change_this_instance_commits_is_seen_by_the_next_read() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Cached Kettle", "home", 2_500, 10).await;
        let id = ProductId::parse(created["id"].as_str().unwrap()).unwrap();
        // Twice: the second read is answered from the cache.
        assert_eq!(seen(&app, id).await, (10, 0));
        assert_eq!(seen(&app, id).await, (10, 0));

        let patched = app
            .patch_product_with(Some(ADMIN_TOKEN), &id.to_string(), &json!({ "stock": 8 }))
            .await;
        assert_eq!(patched.status(), 200);
        assert_eq!(seen(&app, id).await, (8, 0), "after PATCH, {:?}", app.kind);

        let order_id = OrderId::new_v7();
        let reserved = reserve(
            &app,
            order_id,
            vec![ReserveLine {
                product_id: id,
                quantity: 3,
            }],
        )
        .await;
        assert!(matches!(reserved, ReserveResponse::Reserved { .. }));
        assert_eq!(
            seen(&app, id).await,
            (5, 0),
            "after reserve, {:?}",
            app.kind
        );

        let released = release(&app, order_id).await;
        assert!(released);
        assert_eq!(
            seen(&app, id).await,
            (8, 0),
            "after release, {:?}",
            app.kind
        );

        let token = app.user_token(UserId::new_v7());
        let rated = app
            .rate(&id.to_string(), Some(&token), &json!({ "stars": 4 }))
            .await;
        assert_eq!(rated.status(), 201);
        assert_eq!(seen(&app, id).await, (8, 1), "after rating, {:?}", app.kind);
    }
}

/// The names and stocks on the first page of `category`.
async fn listed(app: &TestApp, category: &str) -> Vec<(String, i64)> {
    let response = app.list_products(&[("category", category)], None).await;
    assert_eq!(response.status(), 200, "{:?}", app.kind);
    let body: Value = response.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["name"].as_str().unwrap().to_owned(),
                item["stock"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_listing_shows_new_products_and_changed_stock_at_once() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let teapot = app
            .create_product("Listed Teapot", "kitchen", 1_500, 4)
            .await;
        let teapot_id = teapot["id"].as_str().unwrap().to_owned();
        // Twice: the second page is answered from the cache.
        let one = vec![("Listed Teapot".to_owned(), 4)];
        assert_eq!(listed(&app, "kitchen").await, one);
        assert_eq!(listed(&app, "kitchen").await, one);

        app.create_product("Listed Kettle", "kitchen", 2_500, 9)
            .await;
        let patched = app
            .patch_product_with(Some(ADMIN_TOKEN), &teapot_id, &json!({ "stock": 2 }))
            .await;
        assert_eq!(patched.status(), 200);
        assert_eq!(
            listed(&app, "kitchen").await,
            vec![
                ("Listed Kettle".to_owned(), 9),
                ("Listed Teapot".to_owned(), 2)
            ],
            "{:?}",
            app.kind
        );
    }
}

/// A change re-reads what it changed and keeps it, so the reads after it
/// need not all go to the database. Seen from outside: a change made behind
/// the instance's back right after (as by another replica) is not shown
/// until the copy expires, because the next read is answered from the copy.
#[tokio::test]
async fn a_change_keeps_a_fresh_copy_of_what_it_changed() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app
            .create_product("Refreshed Kettle", "home", 2_500, 10)
            .await;
        let id = ProductId::parse(created["id"].as_str().unwrap()).unwrap();
        let token = app.user_token(UserId::new_v7());
        let rated = app
            .rate(&id.to_string(), Some(&token), &json!({ "stars": 5 }))
            .await;
        assert_eq!(rated.status(), 201);
        let mut behind_its_back = sqlx::AnyConnection::connect(app.database_url())
            .await
            .unwrap();
        sqlx::query("UPDATE products SET stock = 99 WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut behind_its_back)
            .await
            .unwrap();
        assert_eq!(
            seen(&app, id).await,
            (10, 1),
            "the copy kept after the rating, {:?}",
            app.kind
        );
    }
}
