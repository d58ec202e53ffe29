//! Business events survive an event-stream outage: with JetStream's events
//! streams gone (core NATS still up, so stock can be reserved), orders are
//! still placed; once the streams are back, each `order.placed` arrives
//! exactly once and, for one shopper (one partition, so one stream), in the
//! order the orders were placed.

mod mesh;

use mesh::{Mesh, kinds};
use shopmesh_shared::events::EventPayload;
use shopmesh_shared::nats::provision_streams;
use shopmesh_shared::testkit::eventually;
use std::time::Duration;

#[tokio::test]
async fn orders_placed_during_a_stream_outage_are_published_once_in_order_afterwards() {
    for kind in kinds() {
        let mesh = Mesh::start(kind).await;
        let shopper = mesh.shopper("outage@example.com").await;
        let tea = mesh.product("Green tea", "grocery", 4_20, 100).await;

        for (_, stream) in mesh.backbone.settings.streams.partition_streams() {
            mesh.backbone.js.delete_stream(&stream).await.unwrap();
        }
        let mut placed = Vec::new();
        for _ in 0..3 {
            assert_eq!(mesh.add_to_cart(&shopper, &tea, 1).await.status(), 201);
            let response = mesh.checkout(&shopper).await;
            assert_eq!(
                response.status(),
                201,
                "checkout works without the events streams"
            );
            let order: serde_json::Value = response.json().await.unwrap();
            placed.push(order["id"].as_str().unwrap().to_owned());
        }

        provision_streams(&mesh.backbone.js, &mesh.backbone.settings.streams)
            .await
            .unwrap();
        eventually(
            Duration::from_secs(30),
            "three order.placed events",
            async || {
                mesh.events()
                    .await
                    .iter()
                    .filter(|(t, ..)| t == "order.placed")
                    .count()
                    >= 3
            },
        )
        .await;
        let published: Vec<String> = mesh
            .events()
            .await
            .into_iter()
            .filter_map(|(.., event)| match event.payload {
                EventPayload::OrderPlaced(p) => Some(p.order_id.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(published, placed, "each once, in order ({kind:?})");
    }
}
