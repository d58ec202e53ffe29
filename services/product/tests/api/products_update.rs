//! `PATCH /products/{id}`.

use crate::helpers::{ADMIN_TOKEN, assert_problem, assert_traceparent, spawn_app};
use serde_json::{Value, json};
use shopmesh_shared::events::{EventPayload, EventType, ProductId, UserId};
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn an_admin_changes_price_and_stock_and_product_updated_is_published() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Kettle", "home", 2_500, 10).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let product_id = ProductId::parse(&id).unwrap();

        let price = app
            .patch_product_with(Some(ADMIN_TOKEN), &id, &json!({ "price_cents": 2_199 }))
            .await;
        assert_eq!(price.status(), 200, "{:?}", app.kind);
        let price: Value = price.json().await.unwrap();
        assert_eq!(
            (price["price_cents"].as_i64(), price["stock"].as_i64()),
            (Some(2_199), Some(10))
        );
        assert_eq!(price["name"], "Kettle");

        let stock = app
            .patch_product_with(Some(ADMIN_TOKEN), &id, &json!({ "stock": 0 }))
            .await;
        assert_eq!(stock.status(), 200);
        let stock: Value = stock.json().await.unwrap();
        assert_eq!(
            (stock["price_cents"].as_i64(), stock["stock"].as_i64()),
            (Some(2_199), Some(0))
        );

        let both = app
            .patch_product_with(
                Some(ADMIN_TOKEN),
                &id,
                &json!({ "price_cents": 3_000, "stock": 7 }),
            )
            .await;
        assert_eq!(both.status(), 200);
        let both: Value = both.json().await.unwrap();
        let fetched: Value = app.get_product(&id, None).await.json().await.unwrap();
        assert_eq!(fetched, both);
        assert_eq!(
            (both["price_cents"].as_i64(), both["stock"].as_i64()),
            (Some(3_000), Some(7))
        );

        let events = app.wait_for_events(EventType::ProductUpdated, 3).await;
        let seen: Vec<(i64, i64)> = events
            .iter()
            .map(|stored| {
                assert_eq!(stored.subject, "shopmesh.events.product.updated.0");
                assert_traceparent(stored.header("traceparent"));
                assert_eq!(
                    stored.header("Nats-Msg-Id"),
                    Some(stored.event.meta.event_id.to_string().as_str())
                );
                let EventPayload::ProductUpdated(updated) = &stored.event.payload else {
                    panic!("{:?}", stored.event.payload);
                };
                assert_eq!(updated.product_id, product_id);
                (updated.price_cents, updated.stock)
            })
            .collect();
        assert_eq!(
            seen,
            vec![(2_199, 10), (2_199, 0), (3_000, 7)],
            "{:?}",
            app.kind
        );
    }
}

#[tokio::test]
async fn refused_changes_write_nothing() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Kettle", "home", 2_500, 10).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let change = json!({ "stock": 3 });

        let unknown = ProductId::new_v7().to_string();
        let response = app
            .patch_product_with(Some(ADMIN_TOKEN), &unknown, &change)
            .await;
        assert_problem(response, 404, None).await;

        let response = app
            .patch_product_with(Some(ADMIN_TOKEN), "not-a-uuid", &change)
            .await;
        assert_problem(response, 400, Some("id")).await;

        let response = app.patch_product_with(None, &id, &change).await;
        assert_problem(response, 401, None).await;
        let response = app.patch_product_with(Some("wrong"), &id, &change).await;
        assert_problem(response, 403, None).await;
        let user = app.user_token(UserId::new_v7());
        let response = app.patch_product_with(Some(&user), &id, &change).await;
        assert_problem(response, 403, None).await;

        for (field, body) in [
            ("price_cents", json!({ "price_cents": -5 })),
            (
                "price_cents",
                json!({ "price_cents": 100_000_001, "stock": 3 }),
            ),
            ("price_cents", json!({ "price_cents": "free" })),
            ("stock", json!({ "stock": -1 })),
            ("stock", json!({ "price_cents": 100, "stock": 1_000_001 })),
            ("stock", json!({ "stock": 2.5 })),
        ] {
            let response = app.patch_product_with(Some(ADMIN_TOKEN), &id, &body).await;
            assert_problem(response, 400, Some(field)).await;
        }
        for nothing in [
            json!({}),
            json!({ "price_cents": null }),
            json!({ "name": "New" }),
        ] {
            let response = app
                .patch_product_with(Some(ADMIN_TOKEN), &id, &nothing)
                .await;
            assert_problem(response, 400, None).await;
        }

        let fetched: Value = app.get_product(&id, None).await.json().await.unwrap();
        assert_eq!(fetched, created, "{:?}", app.kind);

        // A valid change afterwards is the only product.updated in the stream.
        let response = app
            .patch_product_with(Some(ADMIN_TOKEN), &id, &change)
            .await;
        assert_eq!(response.status(), 200);
        app.wait_for_events(EventType::ProductUpdated, 1).await;
        let events = app.events().await;
        assert_eq!(
            events.len(),
            2,
            "one created, one updated on {:?}",
            app.kind
        );
    }
}
