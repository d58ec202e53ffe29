//! Tracing: the actor's "apply" span continues the event's trace, as a child
//! of the consumer span, itself a child of the producer's context.

use crate::helpers::*;
use shopmesh_analytics::run_system;
use shopmesh_shared::nats::headers;
use shopmesh_shared::testkit::{OtlpReceiver, TestBackbone, eventually, viewed_by};
use std::time::Duration;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the binary exporting to `receiver` with `trace_filter`, publishes
/// one event and waits until its user's profile answers, then stops the
/// binary (which flushes its spans).
async fn one_event_traced(backbone: &TestBackbone, receiver: &OtlpReceiver, trace_filter: &str) {
    let port = free_port();
    let mut binary = start_binary(
        backbone,
        port,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("SHOPMESH_TRACE_FILTER", trace_filter),
        ],
    );
    let client = reqwest::Client::new();
    let address = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(30), "the binary serves", async || {
        client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .is_ok()
    })
    .await;
    let user = shopmesh_shared::events::UserId::new_v7();
    publish_all(backbone, &[viewed_by(user)]).await;
    eventually(
        Duration::from_secs(30),
        "the event is applied",
        async || {
            client
                .get(format!("{address}/users/{user}/profile"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    binary.terminate();
}

#[test]
fn the_apply_span_continues_the_events_trace() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let receiver = OtlpReceiver::start().await;
        one_event_traced(&backbone, &receiver, "info").await;

        let stored = backbone.stored_events().await.remove(0);
        let traceparent = stored
            .headers
            .get(headers::TRACEPARENT)
            .unwrap()
            .as_str()
            .to_owned();
        let parts: Vec<&str> = traceparent.split('-').collect();
        let (trace_id, producer_span) = (parts[1].to_owned(), parts[2].to_owned());
        eventually(
            Duration::from_secs(20),
            "the spans are exported",
            async || receiver.spans().iter().any(|s| s.span.name == "apply"),
        )
        .await;
        let spans = receiver.spans();
        let process = spans
            .iter()
            .find(|s| s.span.name == "process product.viewed")
            .expect("a consumer span");
        assert_eq!(hex(&process.span.trace_id), trace_id);
        assert_eq!(hex(&process.span.parent_span_id), producer_span);
        assert_eq!(process.service_name, "analytics");
        assert_eq!(
            process
                .attribute("messaging.nats.stream_sequence")
                .as_deref(),
            Some(stored.sequence.to_string().as_str())
        );
        let apply = spans.iter().find(|s| s.span.name == "apply").unwrap();
        assert_eq!(hex(&apply.span.trace_id), trace_id);
        assert_eq!(apply.span.parent_span_id, process.span.span_id);
        // A view changes the recommender's view: its span, under apply,
        // counts what the event changed.
        let update = spans
            .iter()
            .find(|s| s.span.name == "recommender update")
            .expect("a recommender update span");
        assert_eq!(update.span.parent_span_id, apply.span.span_id);
        assert_eq!(
            update.attribute("recommender.touches").as_deref(),
            Some("1")
        );
    });
}

/// The per-event spans are made outside `tracing`, yet the trace filter
/// still switches them off, and only them.
#[test]
fn the_trace_filter_switches_the_per_event_spans_off() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let receiver = OtlpReceiver::start().await;
        one_event_traced(&backbone, &receiver, "info,shopmesh::per_event=off").await;
        eventually(
            Duration::from_secs(20),
            "the request spans are exported",
            async || {
                receiver
                    .spans()
                    .iter()
                    .any(|s| s.span.name.contains("/profile"))
            },
        )
        .await;
        let names: Vec<String> = receiver.spans().into_iter().map(|s| s.span.name).collect();
        for per_event in ["process product.viewed", "apply", "recommender update"] {
            assert!(
                !names.iter().any(|n| n == per_event),
                "{per_event} in {names:?}"
            );
        }
    });
}
