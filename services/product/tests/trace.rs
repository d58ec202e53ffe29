//! The caller's W3C trace continues into the events the service writes, over
//! HTTP and over NATS request-reply. A binary of its own: telemetry installs
//! a process-global subscriber, which must not leak into the other tests.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use async_nats::HeaderMap;
use helpers::{ADMIN_TOKEN, WAIT, product_body, spawn_app};
use shopmesh_shared::events::{EventType, OrderId, ProductId};
use shopmesh_shared::rpc::{PRODUCT_RESERVE, ReserveLine, ReserveRequest, ReserveResponse};
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use shopmesh_shared::testkit::test_databases;

const HTTP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const RPC_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn trace_id(traceparent: Option<&str>) -> &str {
    traceparent
        .expect("a traceparent header")
        .split('-')
        .nth(1)
        .expect("a trace id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_events_continue_the_callers_trace() {
    // No exporter: spans still get real ids and the W3C propagator is set.
    let env = Env::from_pairs([("RUST_LOG", "warn")]);
    let settings = TelemetrySettings::from_env(&env, "product-trace-test", "0.0.0").unwrap();
    let telemetry = telemetry::init(&settings).unwrap();

    for database in test_databases().await {
        let app = spawn_app(database).await;

        let response = app
            .http
            .post(app.url("/products"))
            .bearer_auth(ADMIN_TOKEN)
            .header(
                "traceparent",
                format!("00-{HTTP_TRACE}-00f067aa0ba902b7-01"),
            )
            .json(&product_body("Traced", "books", 100, 5))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        let product = ProductId::parse(body["id"].as_str().unwrap()).unwrap();
        let created = app.wait_for_events(EventType::ProductCreated, 1).await;
        assert_eq!(
            trace_id(created[0].header("traceparent")),
            HTTP_TRACE,
            "{:?}",
            app.kind
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{RPC_TRACE}-b7ad6b7169203331-01").as_str(),
        );
        let request = ReserveRequest {
            order_id: OrderId::new_v7(),
            lines: vec![ReserveLine {
                product_id: product,
                quantity: 2,
            }],
        };
        let reply = tokio::time::timeout(
            WAIT,
            app.backbone.client.request_with_headers(
                PRODUCT_RESERVE,
                headers,
                serde_json::to_vec(&request).unwrap().into(),
            ),
        )
        .await
        .unwrap()
        .unwrap();
        let reserved: ReserveResponse = serde_json::from_slice(&reply.payload).unwrap();
        assert!(
            matches!(reserved, ReserveResponse::Reserved { .. }),
            "{reserved:?}"
        );
        let updated = app.wait_for_events(EventType::ProductUpdated, 1).await;
        assert_eq!(
            trace_id(updated[0].header("traceparent")),
            RPC_TRACE,
            "{:?}",
            app.kind
        );
    }
    telemetry.shutdown();
}
