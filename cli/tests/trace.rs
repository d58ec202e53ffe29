//! One checkout, one connected trace: the order service's HTTP SERVER span,
//! the stock reservation over NATS (CLIENT in order, SERVER in product), the
//! outbox relay's PRODUCER span for `order.placed`, the analytics CONSUMER
//! span, the partition actor's `apply` and the recommender's view update, each
//! the child of the one before, exported over real OTLP to an in-process
//! receiver. Also: a caller's W3C `traceparent` on the checkout is continued.
//!
//! Everything runs in this process (user, product, order and analytics on one
//! nats-server), so there is one tracer provider and one `service.name` for
//! all spans; which service emitted a span is checked through what the span
//! itself says (its `target`, the module that made it, and `rpc.service`).
//! A binary of its own: telemetry installs a process-global subscriber.

mod mesh;

use mesh::Mesh;
use shopmesh_shared::events::{EventPayload, EventType, UserId};
use shopmesh_shared::settings::Env;
use shopmesh_shared::subjects::{event_subject, partition_for};
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use shopmesh_shared::testkit::{
    DatabaseKind, OtlpReceiver, ReceivedSpan, ReceivedTrace as Trace, eventually, hex,
};
use std::time::Duration;

/// OTLP `Span.kind` values (opentelemetry-proto's `SpanKind`).
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

const RESERVE: &str = "shopmesh.rpc.product.reserve";
const SERVICE_NAME: &str = "shopmesh-trace-test";
/// The upstream caller of the second checkout.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

const WAIT: Duration = Duration::from_secs(60);

/// What one checkout left behind: its trace id (from the `order.placed`
/// message's `traceparent`), the event's id, subject and the span id the
/// message carries.
struct Placed {
    trace_id: String,
    message_span: String,
    event_id: String,
    subject: String,
}

/// The one child of `parent` named `name` (every span of this test comes
/// from one process, so names are enough).
trait ChildByName {
    fn child(&self, parent: &ReceivedSpan, name: &str) -> &ReceivedSpan;
}

impl ChildByName for Trace {
    fn child(&self, parent: &ReceivedSpan, name: &str) -> &ReceivedSpan {
        self.one(&format!("{name:?} under {:?}", parent.span.name), |s| {
            s.span.name == name && s.span.parent_span_id == parent.span.span_id
        })
    }
}

fn attribute(span: &ReceivedSpan, key: &str) -> Option<String> {
    span.attribute(key)
}

fn target(span: &ReceivedSpan) -> String {
    attribute(span, "target").unwrap_or_default()
}

/// Fills the cart and checks out, with `traceparent` when given; the order id.
async fn checkout(mesh: &Mesh, token: &str, product: &str, traceparent: Option<&str>) -> String {
    assert_eq!(mesh.add_to_cart(token, product, 1).await.status(), 201);
    let mut request = mesh
        .http
        .post(format!("{}/orders", mesh.order))
        .bearer_auth(token);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201);
    let order: serde_json::Value = response.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

/// The `order.placed` of `order_id` as stored in the stream.
async fn placed(mesh: &Mesh, order_id: &str) -> Placed {
    let partitions = mesh.backbone.settings.streams.partitions;
    let events = mesh.events().await;
    let (_, message_id, traceparent, event) = events
        .iter()
        .find(|(t, .., event)| {
            t == EventType::OrderPlaced.as_str()
                && matches!(&event.payload, EventPayload::OrderPlaced(p) if p.order_id.to_string() == order_id)
        })
        .expect("the order's order.placed is in the stream");
    let parts: Vec<&str> = traceparent.split('-').collect();
    let user: Option<&UserId> = event.meta.user_id.as_ref();
    Placed {
        trace_id: parts[1].to_owned(),
        message_span: parts[2].to_owned(),
        event_id: message_id.clone(),
        subject: event_subject(EventType::OrderPlaced, partition_for(user, partitions)),
    }
}

/// The whole chain of one checkout's trace; returns its HTTP SERVER span.
fn assert_connected_trace(trace: &Trace, placed: &Placed) -> ReceivedSpan {
    // Order: the checkout request.
    let http = trace.one("the checkout's HTTP SERVER span", |s| {
        s.span.name == "POST /orders" && s.span.kind == SERVER
    });
    assert_eq!(
        attribute(http, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(attribute(http, "http.route").as_deref(), Some("/orders"));
    assert_eq!(
        attribute(http, "http.response.status_code").as_deref(),
        Some("201")
    );
    assert!(
        target(http).starts_with("shopmesh_shared::http"),
        "{http:?}"
    );
    let handler = trace.child(http, "checkout");
    assert!(target(handler).starts_with("shopmesh_order"), "{handler:?}");

    // Order -> product: stock reserved over NATS request-reply.
    let client = trace.one("the reserve CLIENT span", |s| {
        s.span.name == RESERVE && s.span.kind == CLIENT
    });
    assert!(
        trace.descends_from(client, handler),
        "CLIENT under checkout"
    );
    assert_eq!(
        attribute(client, "messaging.system").as_deref(),
        Some("nats")
    );
    let server = trace.child(client, RESERVE);
    assert_eq!(server.span.kind, SERVER);
    assert_eq!(
        attribute(server, "messaging.system").as_deref(),
        Some("nats")
    );
    assert_eq!(attribute(server, "rpc.service").as_deref(), Some("product"));

    // Order's outbox relay publishes order.placed, continuing the checkout.
    let producer = trace.one("the relay's PRODUCER span for order.placed", |s| {
        s.span.kind == PRODUCER
            && s.attribute("messaging.message.id").as_deref() == Some(placed.event_id.as_str())
    });
    assert_eq!(producer.span.name, "publish order.placed");
    assert!(
        trace.descends_from(producer, handler),
        "the relay continues the trace stored with the row: {producer:?}"
    );
    assert_eq!(target(producer), "shopmesh_shared::outbox");
    assert_eq!(
        attribute(producer, "messaging.system").as_deref(),
        Some("nats")
    );
    assert_eq!(
        attribute(producer, "messaging.destination.name").as_deref(),
        Some(placed.subject.as_str())
    );
    assert_eq!(
        hex(&producer.span.span_id),
        placed.message_span,
        "the message carries the PRODUCER span's context"
    );

    // Analytics: consumer -> actor -> recommender view.
    let consumer = trace.child(producer, "process order.placed");
    assert_eq!(consumer.span.kind, CONSUMER);
    assert_eq!(
        attribute(consumer, "messaging.message.id").as_deref(),
        Some(placed.event_id.as_str())
    );
    let apply = trace.child(consumer, "apply");
    assert_eq!(apply.span.kind, INTERNAL);
    // Per-event spans share one target (the log layers skip it); the code
    // location still names the actor.
    assert_eq!(target(apply), "shopmesh::per_event");
    assert_eq!(
        attribute(apply, "code.module.name").as_deref(),
        Some("shopmesh_analytics::actor")
    );
    // tracing's busy/idle times and thread names are not recorded (three
    // spans per event pay for each attribute).
    for noise in ["busy_ns", "idle_ns", "thread.name", "thread.id"] {
        assert_eq!(attribute(apply, noise), None, "{noise}");
    }
    let update = trace.child(apply, "recommender update");
    assert_eq!(update.span.kind, INTERNAL);
    assert_ne!(
        attribute(update, "recommender.touches").as_deref(),
        Some("0"),
        "the purchase touched the bought product"
    );

    // One connected trace: the HTTP span is its only root; every other span
    // hangs off an exported span of the same trace.
    for span in &trace.spans {
        if span.span.span_id != http.span.span_id {
            assert!(
                trace.descends_from(span, http),
                "{:?} is cut off from the checkout's trace",
                span.span.name
            );
        }
        // One process, one tracer provider: the same resource for every span.
        assert_eq!(span.service_name, SERVICE_NAME);
        assert_eq!(
            span.resource_attribute("service.namespace").as_deref(),
            Some("shopmesh")
        );
    }
    http.clone()
}

#[test]
fn a_checkout_is_one_connected_trace_from_http_to_the_recommender() {
    shopmesh_analytics::run_system(|| async {
        let receiver = OtlpReceiver::start().await;
        let env = Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("RUST_LOG", "warn"),
        ]);
        // The SDK's default sampler (parent-based, always on) keeps every span.
        let settings = TelemetrySettings::from_env(&env, SERVICE_NAME, "0.0.0").unwrap();
        let telemetry = telemetry::init(&settings).unwrap();

        let mesh = Mesh::start(DatabaseKind::Sqlite).await;
        let analytics_env = Env::from_pairs([
            ("NATS_URL", mesh.backbone.server.url()),
            ("SHOPMESH_HTTP_PORT", "0".to_owned()),
            ("SHOPMESH_HTTP_WORKERS", "1".to_owned()),
            ("SHOPMESH_ANALYTICS_ARBITERS", "2".to_owned()),
        ]);
        let analytics_settings =
            shopmesh_analytics::settings::Settings::from_env(&analytics_env).unwrap();
        let analytics = shopmesh_analytics::startup::Application::build(analytics_settings)
            .await
            .unwrap();
        let analytics_url = format!("http://127.0.0.1:{}", analytics.port());
        let analytics_handle = analytics.server_handle();
        // run_system runs a LocalSet: the app, with its actors, stays on it.
        let analytics_task = tokio::task::spawn_local(analytics.run_until_stopped());

        let product = mesh.product("Dune", "books", 1_299, 10).await;
        let (ada, ada_token) = mesh.shopper_with_id("ada@example.com").await;
        let (bob, bob_token) = mesh.shopper_with_id("bob@example.com").await;
        let own_order = checkout(&mesh, &ada_token, &product, None).await;
        let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
        let called_order = checkout(&mesh, &bob_token, &product, Some(&caller)).await;

        // Analytics has applied both orders.
        for user in [&ada, &bob] {
            eventually(WAIT, "analytics applied the order", async || {
                let url = format!("{analytics_url}/users/{user}/profile");
                match mesh.http.get(&url).send().await {
                    Ok(r) if r.status() == 200 => r
                        .json::<serde_json::Value>()
                        .await
                        .is_ok_and(|p| p["counts"]["order.placed"] == 1),
                    _ => false,
                }
            })
            .await;
        }
        let own = placed(&mesh, &own_order).await;
        let called = placed(&mesh, &called_order).await;
        assert_eq!(called.trace_id, CALLER_TRACE, "the caller's trace goes on");
        assert_ne!(own.trace_id, CALLER_TRACE);

        // The batch exporter sends ended spans on its own schedule. Once both
        // checkouts' HTTP spans and both CONSUMER spans of their order.placed
        // are in, every span of the chains has ended (each ends before the
        // next step can see its result); shutdown flushes the rest.
        eventually(WAIT, "the ends of both chains exported", async || {
            let spans = receiver.spans();
            [&own, &called].iter().all(|placed| {
                let http = spans.iter().any(|s| {
                    hex(&s.span.trace_id) == placed.trace_id && s.span.name == "POST /orders"
                });
                let consumer = spans.iter().any(|s| {
                    s.span.kind == CONSUMER
                        && s.attribute("messaging.message.id").as_deref()
                            == Some(placed.event_id.as_str())
                });
                http && consumer
            })
        })
        .await;
        analytics_handle.stop(true).await;
        analytics_task.await.unwrap().unwrap();
        telemetry.shutdown();
        let spans = receiver.spans();

        let http = assert_connected_trace(&Trace::of(&spans, &own.trace_id), &own);
        assert!(
            http.span.parent_span_id.is_empty(),
            "without a caller the checkout's HTTP span is the root"
        );

        let http = assert_connected_trace(&Trace::of(&spans, &called.trace_id), &called);
        assert_eq!(hex(&http.span.trace_id), CALLER_TRACE);
        assert_eq!(
            hex(&http.span.parent_span_id),
            CALLER_SPAN,
            "the HTTP span continues the caller's span"
        );
    });
}
