//! The event publisher against the fastest plain async-nats JetStream
//! publishing of the same work, in the same run, on the same server.
//!
//! Same work on both sides: the same stream (file storage, 2 min duplicate
//! window), one message per event on the same partition subjects, with a
//! unique `Nats-Msg-Id`, the same header set and sizes, the same payload size,
//! every publish acknowledged by the server, and the same window of
//! unacknowledged publishes. Both start from data made before the clock starts:
//! the baseline from message ids and encoded bodies, ours from `Event`s. The
//! baseline builds each message's headers in its loop, as any publisher must;
//! ours also encodes the event, mints its trace context and picks its subject
//! there.
//!
//!     cargo bench -p shopmesh-shared --bench publish
//!     SHOPMESH_BENCH_EVENTS=500000 SHOPMESH_BENCH_ROUNDS=5 cargo bench -p shopmesh-shared --bench publish

use async_nats::header::HeaderName;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use shopmesh_shared::events::{Event, UserId};
use shopmesh_shared::nats::headers as h;
use shopmesh_shared::nats::{EventPublisher, PendingPublish};
use shopmesh_shared::testkit::{TestBackbone, viewed_by};
use std::collections::VecDeque;
use std::time::Instant;

/// Unacknowledged publishes allowed at once, on both sides.
const WINDOW: usize = 4096;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// The fastest way async-nats offers to name a header: no allocation, no check.
const MESSAGE_ID: HeaderName = HeaderName::from_static(h::MESSAGE_ID);
const EVENT_TYPE: HeaderName = HeaderName::from_static(h::EVENT_TYPE);
const SCHEMA_VERSION: HeaderName = HeaderName::from_static(h::SCHEMA_VERSION);
const ENCODING: HeaderName = HeaderName::from_static(h::ENCODING);
const TRACEPARENT: HeaderName = HeaderName::from_static(h::TRACEPARENT);

/// What the baseline starts from for one message.
struct RawInput {
    subject: Subject,
    message_id: String,
    payload: Bytes,
}

/// Plain async-nats: build headers, send, keep the window, await every ack.
async fn raw(js: &async_nats::jetstream::Context, inputs: &[RawInput], traceparent: &str) -> f64 {
    let started = Instant::now();
    let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
    for input in inputs {
        let mut headers = HeaderMap::new();
        headers.insert(MESSAGE_ID, input.message_id.as_str());
        headers.insert(EVENT_TYPE, "product.viewed");
        headers.insert(SCHEMA_VERSION, "1");
        headers.insert(ENCODING, "bincode2");
        headers.insert(TRACEPARENT, traceparent);
        let message = PublishMessage::build()
            .payload(input.payload.clone())
            .headers(headers);
        pending.push_back(
            js.send_publish(input.subject.clone(), message)
                .await
                .unwrap(),
        );
        if pending.len() >= WINDOW {
            pending.pop_front().unwrap().await.unwrap();
        }
    }
    for ack in pending {
        ack.await.unwrap();
    }
    inputs.len() as f64 / started.elapsed().as_secs_f64()
}

/// Our publisher: encode, trace context, subject, headers, send, confirm.
async fn ours(publisher: &EventPublisher, events: &[Event]) -> f64 {
    let started = Instant::now();
    let mut pending: VecDeque<PendingPublish<'_>> = VecDeque::with_capacity(WINDOW);
    for event in events {
        let outbound = publisher.prepare(event).unwrap();
        pending.push_back(publisher.send(outbound).await.unwrap());
        if pending.len() >= WINDOW {
            pending.pop_front().unwrap().confirm().await.unwrap();
        }
    }
    for p in pending {
        p.confirm().await.unwrap();
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

async fn purge(backbone: &TestBackbone) {
    for (_, stream) in backbone.settings.streams.partition_streams() {
        backbone
            .js
            .get_stream(&stream)
            .await
            .unwrap()
            .purge()
            .await
            .unwrap();
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: stay quick then.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let count = if benchmarking {
        env_number("SHOPMESH_BENCH_EVENTS", 200_000)
    } else {
        1_000
    };
    let rounds = if benchmarking {
        env_number("SHOPMESH_BENCH_ROUNDS", 5)
    } else {
        1
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut backbone = TestBackbone::start().await;
        backbone.settings.publisher.max_inflight = WINDOW;
        let publisher = backbone.publisher();
        let baseline_js = shopmesh_shared::nats::jetstream_context(
            backbone.client.clone(),
            &backbone.settings.publisher,
        );

        let users: Vec<UserId> = (0..1_000).map(|_| UserId::new_v7()).collect();
        let make_events =
            || -> Vec<Event> { (0..count).map(|i| viewed_by(users[i % users.len()])).collect() };
        let make_inputs = || -> Vec<RawInput> {
            make_events()
                .iter()
                .map(|event| {
                    let outbound = publisher.prepare(event).unwrap();
                    RawInput {
                        subject: outbound.subject,
                        message_id: event.meta.event_id.to_string(),
                        payload: outbound.body,
                    }
                })
                .collect()
        };
        let traceparent = h::TraceHeaders::current().traceparent;
        let payload_bytes = make_inputs()[0].payload.len();

        let (mut raw_rates, mut our_rates) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Fresh ids every round: the duplicate window remembers old ones.
            let (inputs, events) = (make_inputs(), make_events());
            // Alternate who goes first, so that what one run leaves behind (a
            // purge the server finishes in the background) favours neither.
            for turn in 0..2 {
                purge(&backbone).await;
                if (round + turn) % 2 == 0 {
                    raw_rates.push(raw(&baseline_js, &inputs, &traceparent).await);
                } else {
                    our_rates.push(ours(&publisher, &events).await);
                }
            }
        }
        let (raw_rate, our_rate) = (median(&mut raw_rates), median(&mut our_rates));
        println!(
            "publish: {count} product.viewed events x {rounds} rounds, {payload_bytes} B body, window {WINDOW}, file storage"
        );
        println!("  raw async-nats JetStream publish : {raw_rate:>10.0} msgs/s (median)");
        println!("  shopmesh EventPublisher          : {our_rate:>10.0} msgs/s (median)");
        println!(
            "  ratio ours / raw                 : {:>10.3} (target >= 0.9)",
            our_rate / raw_rate
        );
    });
}
