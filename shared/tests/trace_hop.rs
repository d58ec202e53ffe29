//! One trace across a NATS hop, exported through the real telemetry setup.
//!
//! `telemetry::init` exports over OTLP/HTTP to an in-process receiver that
//! decodes the protobuf. A span on the publishing side, the PRODUCER span of
//! the publish and the CONSUMER span in the runner must share one trace id
//! and form a parent chain; `Telemetry::shutdown` must flush them all.
//! (One test per file: the tracing subscriber is global to the process.)

use opentelemetry::trace::TraceContextExt;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use shopmesh_shared::events::UserId;
use shopmesh_shared::nats::{ConsumerRunner, Delivery, EventHandler, HandlerError};
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use shopmesh_shared::testkit::{OtlpReceiver, TestBackbone, viewed_by};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct TraceRecorder(mpsc::UnboundedSender<(String, String)>);

impl EventHandler for TraceRecorder {
    async fn handle(&self, _delivery: Delivery) -> Result<(), HandlerError> {
        let cx = tracing::Span::current().context();
        let sc = cx.span().span_context().clone();
        let _ = self
            .0
            .send((sc.trace_id().to_string(), sc.span_id().to_string()));
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_id_survives_the_nats_hop_and_is_flushed_on_shutdown() {
    let receiver = OtlpReceiver::start().await;
    let env = Env::from_pairs([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        // Quiet logs must not switch the spans of a trace off.
        ("RUST_LOG", "warn"),
    ]);
    let settings = TelemetrySettings::from_env(&env, "hop-test", "9.9.9").unwrap();
    let telemetry = telemetry::init(&settings).unwrap();

    let backbone = TestBackbone::start().await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let runner = ConsumerRunner::new(
        backbone.js.clone(),
        "trace",
        backbone.settings.streams.partitions.all().collect(),
        &backbone.settings.streams,
        &backbone.settings.consumer,
        Arc::new(TraceRecorder(tx)),
    );
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(runner.run(shutdown.clone()));

    let checkout = tracing::info_span!("checkout");
    let checkout_trace = checkout
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string();
    let publisher = backbone.publisher();
    let event = viewed_by(UserId::new_v7());
    publisher
        .publish(&event)
        .instrument(checkout.clone())
        .await
        .unwrap();
    drop(checkout);

    let (consumer_trace, handler_span) = tokio::time::timeout(Duration::from_secs(20), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        checkout_trace,
        "0".repeat(32),
        "the publishing side has a real trace"
    );
    assert_eq!(
        consumer_trace, checkout_trace,
        "trace id changed across NATS"
    );

    shutdown.cancel();
    consuming.await.unwrap().unwrap();
    // Flush happens here; nothing is exported before the batch timer otherwise.
    telemetry.shutdown();

    let spans = receiver.spans();
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s.span.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no span {name:?} in {:?}",
                    spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
                )
            })
            .clone()
    };
    let root = by_name("checkout");
    let publish = by_name("publish product.viewed");
    let process = by_name("process product.viewed");
    let handle = by_name("handle");
    for span in [&root, &publish, &process, &handle] {
        assert_eq!(hex(&span.span.trace_id), checkout_trace);
        assert_eq!(span.service_name, "hop-test");
        assert_eq!(
            span.resource_attribute("service.namespace").as_deref(),
            Some("shopmesh")
        );
        assert_eq!(
            span.resource_attribute("service.version").as_deref(),
            Some("9.9.9")
        );
    }
    assert_eq!(publish.span.parent_span_id, root.span.span_id);
    assert_eq!(process.span.parent_span_id, publish.span.span_id);
    // The handler runs in a `tracing` span continuing the CONSUMER span, so
    // its own spans and logs join the trace.
    assert_eq!(handle.span.parent_span_id, process.span.span_id);
    assert_eq!(hex(&handle.span.span_id), handler_span);
    assert_eq!(publish.span.kind, SpanKind::Producer as i32);
    assert_eq!(process.span.kind, SpanKind::Consumer as i32);
    assert_eq!(
        publish.attribute("messaging.system").as_deref(),
        Some("nats")
    );
    assert_eq!(
        publish.attribute("messaging.message.id"),
        Some(event.meta.event_id.to_string())
    );
    assert_eq!(
        process.attribute("messaging.operation.type").as_deref(),
        Some("process")
    );
}
