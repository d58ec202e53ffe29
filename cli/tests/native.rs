//! The services as separate native processes, configured only through their
//! environment: a shopper's flow works across them, every event reaches the
//! stream with its message id and trace, and SIGTERM stops each one cleanly
//! (exit status 0 after draining requests, outbox and behaviour buffer).

mod mesh;

use mesh::{Mesh, kinds};
use shopmesh_shared::testkit::eventually;
use std::time::Duration;

#[tokio::test]
async fn natively_started_services_serve_a_checkout_and_stop_cleanly() {
    for kind in kinds() {
        let mut mesh = Mesh::start_native(kind).await;
        let token = mesh.shopper("native@example.com").await;
        let mug = mesh.product("Enamel mug", "home", 8_50, 4).await;
        let viewed = mesh
            .http
            .get(format!("{}/products/{mug}", mesh.product))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(viewed.status(), 200);
        assert_eq!(mesh.add_to_cart(&token, &mug, 2).await.status(), 201);
        let order = mesh.checkout(&token).await;
        assert_eq!(order.status(), 201, "{kind:?}");
        let order: serde_json::Value = order.json().await.unwrap();
        assert_eq!(mesh.stock(&mug).await, 2);

        let expected = [
            "user.registered",
            "user.logged_in",
            "product.created",
            "product.viewed",
            "cart.item_added",
            "product.updated",
            "order.placed",
        ];
        eventually(
            Duration::from_secs(20),
            "the flow's events in the stream",
            async || {
                let types: Vec<String> = mesh.events().await.into_iter().map(|(t, ..)| t).collect();
                expected.iter().all(|e| types.iter().any(|t| t == e))
            },
        )
        .await;
        for (event_type, message_id, traceparent, event) in mesh.events().await {
            assert_eq!(message_id, event.meta.event_id.to_string(), "{event_type}");
            assert!(traceparent.starts_with("00-"), "{event_type}");
        }

        let listed = mesh
            .get_json(&format!("{}/orders", mesh.order), Some(&token))
            .await;
        assert_eq!(listed["items"][0]["id"], order["id"]);

        for status in mesh.terminate() {
            assert!(status.success(), "a service did not stop cleanly: {status}");
        }
    }
}
