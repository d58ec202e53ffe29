//! Checkout across services: order -> product (stock over NATS) -> outbox.

mod mesh;

use mesh::{Mesh, kinds};
use shopmesh_shared::testkit::eventually;
use std::time::Duration;

#[tokio::test]
async fn a_checkout_reserves_stock_records_the_order_and_publishes_it_once() {
    for kind in kinds() {
        let mesh = Mesh::start(kind).await;
        let token = mesh.shopper("ada@example.com").await;
        let book = mesh.product("Dune", "books", 1_299, 5).await;
        let lamp = mesh.product("Desk lamp", "home", 3_450, 2).await;

        assert_eq!(mesh.add_to_cart(&token, &book, 2).await.status(), 201);
        assert_eq!(mesh.add_to_cart(&token, &lamp, 1).await.status(), 201);
        let response = mesh.checkout(&token).await;
        assert_eq!(response.status(), 201, "{kind:?}");
        let order: serde_json::Value = response.json().await.unwrap();
        assert_eq!(order["total_cents"], 2 * 1_299 + 3_450);
        assert_eq!(order["lines"].as_array().unwrap().len(), 2);
        assert_eq!(order["status"], "placed");
        assert_eq!(mesh.stock(&book).await, 3);
        assert_eq!(mesh.stock(&lamp).await, 1);

        // The cart is empty and the order is listed.
        let cart = mesh
            .get_json(&format!("{}/cart", mesh.order), Some(&token))
            .await;
        assert_eq!(cart["items"], serde_json::json!([]));

        let order_id = order["id"].as_str().unwrap().to_owned();
        eventually(
            Duration::from_secs(20),
            "order.placed in the stream",
            async || {
                mesh.events()
                    .await
                    .iter()
                    .any(|(t, ..)| t == "order.placed")
            },
        )
        .await;
        let events = mesh.events().await;
        let placed: Vec<_> = events
            .iter()
            .filter(|(t, ..)| t == "order.placed")
            .collect();
        assert_eq!(placed.len(), 1, "exactly once");
        let (_, message_id, traceparent, event) = placed[0];
        assert_eq!(message_id, &event.meta.event_id.to_string());
        assert!(traceparent.starts_with("00-"));
        match &event.payload {
            shopmesh_shared::events::EventPayload::OrderPlaced(p) => {
                assert_eq!(p.order_id.to_string(), order_id);
                assert_eq!(p.total_cents, 2 * 1_299 + 3_450);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn not_enough_stock_is_409_naming_the_products_and_nothing_changes() {
    for kind in kinds() {
        let mesh = Mesh::start(kind).await;
        let token = mesh.shopper("bob@example.com").await;
        let rare = mesh
            .product("Signed first edition", "books", 99_00, 1)
            .await;
        let common = mesh.product("Paperback", "books", 9_99, 50).await;
        mesh.add_to_cart(&token, &rare, 2).await;
        mesh.add_to_cart(&token, &common, 1).await;
        let response = mesh.checkout(&token).await;
        assert_eq!(response.status(), 409);
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/out-of-stock");
        assert_eq!(problem["short"][0]["product_id"], rare.as_str());
        assert_eq!(problem["short"][0]["available"], 1);
        assert_eq!(
            (mesh.stock(&rare).await, mesh.stock(&common).await),
            (1, 50)
        );
        let orders = mesh
            .get_json(&format!("{}/orders", mesh.order), Some(&token))
            .await;
        assert_eq!(orders["items"], serde_json::json!([]));
    }
}

#[tokio::test]
async fn concurrent_checkouts_of_the_last_item_have_exactly_one_winner() {
    for kind in kinds() {
        let mesh = Mesh::start(kind).await;
        let last = mesh.product("Last one", "toys", 5_00, 1).await;
        let mut tokens = Vec::new();
        for i in 0..6 {
            let token = mesh.shopper(&format!("racer{i}@example.com")).await;
            assert_eq!(mesh.add_to_cart(&token, &last, 1).await.status(), 201);
            tokens.push(token);
        }
        let results = futures::future::join_all(tokens.iter().map(|t| mesh.checkout(t))).await;
        let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(
            statuses.iter().filter(|&&s| s == 201).count(),
            1,
            "{statuses:?} ({kind:?})"
        );
        assert!(
            statuses.iter().all(|&s| s == 201 || s == 409),
            "{statuses:?}"
        );
        assert_eq!(mesh.stock(&last).await, 0);
    }
}

#[tokio::test]
async fn another_users_order_is_invisible_and_cancelling_releases_stock() {
    for kind in kinds() {
        let mesh = Mesh::start(kind).await;
        let alice = mesh.shopper("alice@example.com").await;
        let mallory = mesh.shopper("mallory@example.com").await;
        let kettle = mesh.product("Kettle", "home", 24_00, 3).await;
        mesh.add_to_cart(&alice, &kettle, 2).await;
        let order: serde_json::Value = mesh.checkout(&alice).await.json().await.unwrap();
        let id = order["id"].as_str().unwrap();
        assert_eq!(mesh.stock(&kettle).await, 1);

        let order_url = format!("{}/orders/{id}", mesh.order);
        let cancel_url = format!("{order_url}/cancel");
        let peek = mesh
            .http
            .get(&order_url)
            .bearer_auth(&mallory)
            .send()
            .await
            .unwrap();
        assert_eq!(peek.status(), 404);
        let steal = mesh.post(&cancel_url, &mallory).await;
        assert_eq!(steal.status(), 404);
        assert_eq!(mesh.stock(&kettle).await, 1);

        let cancel = mesh.post(&cancel_url, &alice).await;
        assert_eq!(cancel.status(), 200);
        let cancelled: serde_json::Value = cancel.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(mesh.stock(&kettle).await, 3);
        let again = mesh.post(&cancel_url, &alice).await;
        assert_eq!(again.status(), 409);
        eventually(
            Duration::from_secs(20),
            "order.cancelled in the stream",
            async || {
                mesh.events()
                    .await
                    .iter()
                    .any(|(t, ..)| t == "order.cancelled")
            },
        )
        .await;
    }
}
