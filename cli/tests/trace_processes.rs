//! One shopper's session, one connected trace across four processes: the
//! user, product, order and analytics binaries run as operators run them,
//! each exporting OTLP with its own resource (`service.name`,
//! `service.version`, `service.namespace`) to one in-process receiver that
//! decodes the protobuf with opentelemetry-proto, independently of the SDK
//! that sent it.
//!
//! The test plays the shop's front end: it starts the trace and sends the
//! same W3C `traceparent` with registration, login, add-to-cart and checkout,
//! as a browser's instrumentation would. The front end's span is not
//! exported (it is not ours), so it is the tree's one root outside the
//! receiver: every received span of the trace must hang, through received
//! spans only, from the HTTP SERVER spans that continue it. On that tree the
//! checkout's chain is checked hop by hop with its span kinds (order's HTTP
//! and reserve CLIENT -> product's reserve SERVER -> order's outbox relay
//! PRODUCER -> analytics CONSUMER -> apply -> recommender update), and the
//! database CLIENT spans under the order and product request spans.
//!
//! Every wait is bounded; spans still buffered in the services are flushed by
//! their graceful shutdown on SIGTERM.

mod mesh;

use mesh::{Mesh, NativeOptions, kinds};
use shopmesh_shared::events::{EventPayload, EventType};
use shopmesh_shared::testkit::{
    DatabaseKind, OtlpReceiver, ReceivedSpan, ReceivedTrace as Trace, eventually, hex,
};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// OTLP `Span.kind` values (opentelemetry-proto's `SpanKind`).
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

const RESERVE: &str = "shopmesh.rpc.product.reserve";
/// The front end's trace and span: the parent of the session's requests.
const SESSION_TRACE: &str = "5a1e5e551015a1e5e551015a1e5e5510";
const FRONT_END_SPAN: &str = "f40e7d5a1e5e5510";

const WAIT: Duration = Duration::from_secs(60);
const EMAIL: &str = "traced.shopper@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// The lookups this test adds to a received trace.
trait ServiceSpans {
    /// The one child of `parent` from `service` named `name`.
    fn child(&self, parent: &ReceivedSpan, service: &str, name: &str) -> &ReceivedSpan;
    /// The database spans of `ancestor`'s own process below it (the
    /// product's statements are below the checkout too, through the RPC).
    fn statements_under(&self, ancestor: &ReceivedSpan) -> Vec<&ReceivedSpan>;
}

impl ServiceSpans for Trace {
    fn child(&self, parent: &ReceivedSpan, service: &str, name: &str) -> &ReceivedSpan {
        self.one(
            &format!("{service} {name:?} under {:?}", parent.span.name),
            |s| {
                s.service_name == service
                    && s.span.name == name
                    && s.span.parent_span_id == parent.span.span_id
            },
        )
    }

    fn statements_under(&self, ancestor: &ReceivedSpan) -> Vec<&ReceivedSpan> {
        self.spans
            .iter()
            .filter(|s| {
                s.attribute("db.system.name").is_some()
                    && s.service_name == ancestor.service_name
                    && self.descends_from(s, ancestor)
            })
            .collect()
    }
}

/// A request of the session: carries the front end's `traceparent`.
fn in_session(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header(
        "traceparent",
        format!("00-{SESSION_TRACE}-{FRONT_END_SPAN}-01"),
    )
}

/// Registers, logs in, fills the cart and checks out, all in the session's
/// trace; (user id, order id).
async fn shop(mesh: &Mesh, product: &str) -> (String, String) {
    let registered = in_session(mesh.http.post(format!("{}/users", mesh.user)))
        .json(
            &serde_json::json!({ "email": EMAIL, "name": "Traced Shopper", "password": PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let user: serde_json::Value = registered.json().await.unwrap();
    let login = in_session(mesh.http.post(format!("{}/sessions", mesh.user)))
        .json(&serde_json::json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session: serde_json::Value = login.json().await.unwrap();
    let token = session["token"].as_str().unwrap();
    let added = in_session(mesh.http.post(format!("{}/cart/items", mesh.order)))
        .bearer_auth(token)
        .json(&serde_json::json!({ "product_id": product, "quantity": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let checkout = in_session(mesh.http.post(format!("{}/orders", mesh.order)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), 201);
    let order: serde_json::Value = checkout.json().await.unwrap();
    (
        user["id"].as_str().unwrap().to_owned(),
        order["id"].as_str().unwrap().to_owned(),
    )
}

/// The session's events in the stream: (type, event id).
async fn session_events(mesh: &Mesh) -> Vec<(String, String)> {
    mesh.events()
        .await
        .into_iter()
        .filter(|(_, _, traceparent, _)| traceparent.split('-').nth(1) == Some(SESSION_TRACE))
        .map(|(event_type, id, ..)| (event_type, id))
        .collect()
}

/// The CONSUMER span of the event with `event_id`, if received.
fn consumer_of<'a>(spans: &'a [ReceivedSpan], event_id: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| {
        s.span.kind == CONSUMER && s.attribute("messaging.message.id").as_deref() == Some(event_id)
    })
}

async fn one_session_is_one_trace_over_four_processes(kind: DatabaseKind) {
    let receiver = OtlpReceiver::start().await;
    let options = NativeOptions {
        analytics: true,
        env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                receiver.endpoint.clone(),
            ),
            // Export soon after a span ends, so the waits below are short.
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
        ],
        ..NativeOptions::default()
    };
    let mut mesh = Mesh::start_native_with(kind, options).await;
    let analytics = mesh.analytics.clone().unwrap();
    // The catalogue is the shop's, not the session's.
    let product = mesh.product("Traced Dune", "books", 1_299, 10).await;

    let (user_id, order_id) = shop(&mesh, &product).await;

    // Analytics has taken in the order, and every event of the session has
    // reached it (its CONSUMER span is exported), so each chain has ended.
    eventually(WAIT, "analytics applied the order", async || {
        let url = format!("{analytics}/users/{user_id}/profile");
        match mesh.http.get(&url).send().await {
            Ok(r) if r.status() == 200 => r
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|p| p["counts"]["order.placed"] == 1),
            _ => false,
        }
    })
    .await;
    let mut events = Vec::new();
    eventually(
        WAIT,
        "a CONSUMER span for every event of the session",
        async || {
            events = session_events(&mesh).await;
            let spans = receiver.spans();
            events
                .iter()
                .any(|(t, _)| t == EventType::OrderPlaced.as_str())
                && events
                    .iter()
                    .all(|(_, id)| consumer_of(&spans, id).is_some())
        },
    )
    .await;
    // SIGTERM: each service drains and flushes its spans before it exits.
    for status in mesh.terminate() {
        assert!(status.success(), "{kind:?}: a service exited with {status}");
    }
    let trace = Trace::of(&receiver.spans(), SESSION_TRACE);

    // Four processes, each with its own resource.
    let services: BTreeSet<&str> = trace
        .spans
        .iter()
        .map(|s| s.service_name.as_str())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["analytics", "order", "product", "user"]),
        "{kind:?}"
    );
    let mut resources: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for span in &trace.spans {
        let mut resource: Vec<(String, String)> =
            ["service.name", "service.version", "service.namespace"]
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        span.resource_attribute(k).unwrap_or_default(),
                    )
                })
                .collect();
        resource.sort();
        let seen = resources
            .entry(&span.service_name)
            .or_insert(resource.clone());
        assert_eq!(*seen, resource, "one resource per process");
        assert_eq!(
            resource,
            [
                ("service.name".to_owned(), span.service_name.clone()),
                ("service.namespace".to_owned(), "shopmesh".to_owned()),
                (
                    "service.version".to_owned(),
                    env!("CARGO_PKG_VERSION").to_owned()
                ),
            ]
        );
    }

    // One connected tree: span ids are unique; every span's parent is a
    // received span of the trace, except for the session's requests, whose
    // parent is the front end's span.
    let ids: BTreeSet<&[u8]> = trace
        .spans
        .iter()
        .map(|s| s.span.span_id.as_slice())
        .collect();
    assert_eq!(ids.len(), trace.spans.len(), "span ids are unique");
    let mut roots: Vec<(&str, &str)> = Vec::new();
    for span in &trace.spans {
        if trace.by_id(&span.span.parent_span_id).is_none() {
            assert_eq!(
                hex(&span.span.parent_span_id),
                FRONT_END_SPAN,
                "{} {:?} is cut off from the session's trace",
                span.service_name,
                span.span.name
            );
            assert_eq!(span.span.kind, SERVER);
            roots.push((span.service_name.as_str(), span.span.name.as_str()));
        }
    }
    roots.sort();
    assert_eq!(
        roots,
        [
            ("order", "POST /cart/items"),
            ("order", "POST /orders"),
            ("user", "POST /sessions"),
            ("user", "POST /users"),
        ],
        "the session's four requests are the tree's top"
    );
    for span in &trace.spans {
        let reaches_a_request = trace.spans.iter().any(|root| {
            hex(&root.span.parent_span_id) == FRONT_END_SPAN
                && (root.span.span_id == span.span.span_id || trace.descends_from(span, root))
        });
        assert!(reaches_a_request, "{:?} is in a cycle", span.span.name);
    }

    // The checkout, hop by hop.
    let checkout = trace.one("order's checkout SERVER span", |s| {
        s.service_name == "order" && s.span.name == "POST /orders"
    });
    let handler = trace.child(checkout, "order", "checkout");
    assert_eq!(handler.span.kind, INTERNAL);
    let client = trace.one("order's reserve CLIENT span", |s| {
        s.service_name == "order" && s.span.name == RESERVE && s.span.kind == CLIENT
    });
    assert!(trace.descends_from(client, handler));
    let reserve = trace.child(client, "product", RESERVE);
    assert_eq!(reserve.span.kind, SERVER);
    assert_eq!(reserve.attribute("rpc.service").as_deref(), Some("product"));
    let placed = trace.one("order's relay PRODUCER span for order.placed", |s| {
        s.service_name == "order"
            && s.span.kind == PRODUCER
            && s.span.name == "publish order.placed"
    });
    assert!(
        trace.descends_from(placed, handler),
        "the relay continues the checkout's trace"
    );
    let placed_id = placed.attribute("messaging.message.id").unwrap();
    let stream = mesh.events().await;
    let (.., event) = stream
        .iter()
        .find(|(_, id, ..)| *id == placed_id)
        .expect("the published order.placed is in the stream");
    assert!(
        matches!(&event.payload, EventPayload::OrderPlaced(p) if p.order_id.to_string() == order_id)
    );
    let consumer = trace.child(placed, "analytics", "process order.placed");
    assert_eq!(consumer.span.kind, CONSUMER);
    let apply = trace.child(consumer, "analytics", "apply");
    assert_eq!(apply.span.kind, INTERNAL);
    let update = trace.child(apply, "analytics", "recommender update");
    assert_eq!(update.span.kind, INTERNAL);

    // Database spans under the request spans that ran them.
    let system = match kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgresql",
    };
    let names = |spans: Vec<&ReceivedSpan>, service: &str| -> BTreeSet<String> {
        for span in &spans {
            assert_eq!(span.span.kind, CLIENT, "{span:?}");
            assert_eq!(span.service_name, service);
            assert_eq!(span.attribute("db.system.name").as_deref(), Some(system));
            let text = span.attribute("db.query.text").unwrap();
            assert!(text.contains(&span.attribute("db.collection.name").unwrap()));
            assert!(
                span.span.name
                    == format!(
                        "{} {}",
                        span.attribute("db.operation.name").unwrap(),
                        span.attribute("db.collection.name").unwrap()
                    )
            );
        }
        spans.iter().map(|s| s.span.name.clone()).collect()
    };
    let order_statements = names(trace.statements_under(checkout), "order");
    for expected in [
        "SELECT cart_items",
        "INSERT orders",
        "INSERT order_lines",
        "DELETE cart_items",
        "INSERT shopmesh_outbox",
    ] {
        assert!(
            order_statements.contains(expected),
            "{kind:?}: {expected} under the checkout: {order_statements:?}"
        );
    }
    let product_statements = names(trace.statements_under(reserve), "product");
    for expected in [
        "SELECT reservations",
        "UPDATE products",
        "INSERT reservations",
        "INSERT shopmesh_outbox",
    ] {
        assert!(
            product_statements.contains(expected),
            "{kind:?}: {expected} under the reservation: {product_statements:?}"
        );
    }
    let register = trace.one("user's registration", |s| s.span.name == "POST /users");
    assert!(names(trace.statements_under(register), "user").contains("INSERT users"));
    let login = trace.one("user's login", |s| s.span.name == "POST /sessions");
    assert!(names(trace.statements_under(login), "user").contains("SELECT users"));
    // What was bound stays out: no span of the session quotes the shopper.
    for span in &trace.spans {
        let dump = format!("{:?}", span.span);
        assert!(!dump.contains(EMAIL) && !dump.contains(PASSWORD), "{dump}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shoppers_session_is_one_trace_across_four_service_processes() {
    for kind in kinds() {
        one_session_is_one_trace_over_four_processes(kind).await;
    }
}
