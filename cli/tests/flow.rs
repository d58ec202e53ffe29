//! The shopper's whole flow across the three services, then the events it left
//! in the stream, as any NATS client would read them.

mod mesh;

use mesh::{ADMIN_TOKEN, Mesh, kinds};
use serde_json::json;
use shopmesh_shared::testkit::eventually;
use std::time::Duration;

#[tokio::test]
async fn register_login_browse_rate_buy_and_find_every_event_in_the_stream() {
    for kind in kinds() {
        let mesh = Mesh::start(kind).await;
        let http = &mesh.http;

        // Register and log in.
        let created = http
            .post(format!("{}/users", mesh.user))
            .json(&json!({ "email": "Grace@Example.com", "name": "Grace", "password": "hopper-1906" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let user: serde_json::Value = created.json().await.unwrap();
        assert_eq!(user["email"], "grace@example.com");
        let session: serde_json::Value = http
            .post(format!("{}/sessions", mesh.user))
            .json(&json!({ "email": "grace@example.com", "password": "hopper-1906" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = session["token"].as_str().unwrap();
        let me = mesh
            .get_json(&format!("{}/users/me", mesh.user), Some(token))
            .await;
        assert_eq!(me["id"], user["id"]);

        // The catalogue, as admin.
        let compiler = mesh
            .product("Compilers: Principles", "books", 59_00, 10)
            .await;
        let _lamp = mesh.product("Reading lamp", "home", 19_00, 10).await;
        let patched = http
            .patch(format!("{}/products/{compiler}", mesh.product))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "price_cents": 49_00 }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200);

        // Search, view, rate.
        let search = format!("{}/products?q=compil&category=books", mesh.product);
        let found = mesh.get_json(&search, Some(token)).await;
        assert_eq!(found["total"], 1);
        assert_eq!(found["items"][0]["id"], compiler.as_str());
        let viewed = http
            .get(format!("{}/products/{compiler}", mesh.product))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(viewed.status(), 200);
        let rated = http
            .post(format!("{}/products/{compiler}/ratings", mesh.product))
            .bearer_auth(token)
            .json(&json!({ "stars": 5 }))
            .send()
            .await
            .unwrap();
        assert_eq!(rated.status(), 201);

        // Cart and checkout, at the patched price.
        assert_eq!(mesh.add_to_cart(token, &compiler, 1).await.status(), 201);
        let order = mesh.checkout(token).await;
        assert_eq!(order.status(), 201);
        let order: serde_json::Value = order.json().await.unwrap();
        assert_eq!(order["total_cents"], 49_00);
        let orders = mesh
            .get_json(&format!("{}/orders", mesh.order), Some(token))
            .await;
        assert_eq!(orders["items"][0]["id"], order["id"]);

        // Every step left its event, each with a message id and a trace.
        let expected = [
            "user.registered",
            "user.logged_in",
            "product.created",
            "product.updated",
            "product.searched",
            "product.viewed",
            "product.rated",
            "cart.item_added",
            "order.placed",
        ];
        eventually(
            Duration::from_secs(20),
            "every event type of the flow",
            async || {
                let types: Vec<String> = mesh.events().await.into_iter().map(|(t, ..)| t).collect();
                expected.iter().all(|e| types.iter().any(|t| t == e))
            },
        )
        .await;
        let events = mesh.events().await;
        for (event_type, message_id, traceparent, event) in &events {
            assert_eq!(message_id, &event.meta.event_id.to_string(), "{event_type}");
            assert_eq!(traceparent.len(), 55, "{event_type}: {traceparent}");
            assert_eq!(event_type, event.event_type().as_str());
        }
        let user_id = user["id"].as_str().unwrap();
        for (event_type, .., event) in &events {
            if !event_type.starts_with("product.created")
                && !event_type.starts_with("product.updated")
            {
                assert_eq!(
                    event.meta.user_id.map(|u| u.to_string()).as_deref(),
                    Some(user_id),
                    "{event_type} names the shopper"
                );
            }
        }
    }
}
