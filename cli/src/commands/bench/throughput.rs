//! Throughput, ours against raw JetStream, in the same run.
//!
//! Ours: N events through the publish path the services use (the shared
//! `EventPublisher`: encode, trace context, subject, headers, a window of
//! unacknowledged publishes) into the events streams (one per partition),
//! consumed by the
//! analytics service process, which applies every aggregate and the
//! recommender's view and acks; timed from the first publish until
//! analytics' consumer has handled all N.
//!
//! Raw: the fastest plain async-nats code moving the same messages: the same
//! subjects (under a prefix of the same length), bodies and header set,
//! built in the publish loop as any publisher must, the same window of
//! unacknowledged publishes, into one stream with the events streams'
//! settings (file storage, limits, duplicate window; the byte limit of all
//! partitions together); consumed, on a connection of its
//! own as analytics has, by one durable pull consumer with the analytics
//! consumer's ack policy (explicit ack of every message, ack wait, max ack
//! pending) and pull batch, acking each message and nothing else: no decode,
//! no work. One stream and one consumer, not a stream and a consumer per
//! partition as analytics runs: that is the least work for nats-server (on
//! this machine one consumer over one stream moved as many messages per
//! second as a stream per partition or more, and about twice as many as 32
//! filtered consumers on one stream), and a single consumer still delivers
//! every partition in order. Timed from the first publish until the consumer
//! has acked all.
//!
//! Both sides keep their streams and consumers from one round to the next
//! (raw: one stream, one durable consumer), so that in every round both
//! start with the same number of messages stored.
//!
//! Rounds alternate who goes first, since the machine is noisy.

use super::applied;
use anyhow::{Context, bail};
use async_nats::header::HeaderName;
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use shopmesh_shared::codec;
use shopmesh_shared::events::Event;
use shopmesh_shared::nats::headers as h;
use shopmesh_shared::nats::{EventPublisher, PendingPublish, events_stream_config};
use shopmesh_shared::settings::BackboneSettings;
use shopmesh_shared::subjects::EVENTS_PREFIX;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The raw side's stream, and its subject prefix: as long as the events
/// prefix, so that every raw message has exactly the size of ours.
const RAW_STREAM: &str = "SHOPMESH_BENCH_RAW";
const RAW_PREFIX: &str = "shopmesh.rawevt";
const _: () = assert!(RAW_PREFIX.len() == EVENTS_PREFIX.len());

/// Longest a side may take before the bench gives up on it.
const DEADLINE: Duration = Duration::from_secs(600);

// The cheapest header names async-nats offers: static, never checked.
const MESSAGE_ID: HeaderName = HeaderName::from_static(h::MESSAGE_ID);
const EVENT_TYPE: HeaderName = HeaderName::from_static(h::EVENT_TYPE);
const SCHEMA_VERSION: HeaderName = HeaderName::from_static(h::SCHEMA_VERSION);
const ENCODING: HeaderName = HeaderName::from_static(h::ENCODING);
const TRACEPARENT: HeaderName = HeaderName::from_static(h::TRACEPARENT);

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Round {
    pub ours_events_per_s: f64,
    pub raw_msgs_per_s: f64,
    pub ratio: f64,
    pub ours_first: bool,
}

/// What the raw side starts from for one message (made before its clock
/// starts, as ours starts from `Event`s).
struct RawMessage {
    subject: Subject,
    message_id: String,
    event_type: &'static str,
    schema_version: &'static str,
    traceparent: String,
    payload: Bytes,
}

pub struct Throughput<'a> {
    pub publisher: &'a EventPublisher,
    /// The raw side's own connections, publishing and consuming, so that
    /// they share nothing with ours.
    pub raw_publishing: async_nats::Client,
    pub raw_consuming: async_nats::Client,
    pub backbone: &'a BackboneSettings,
    pub http: &'a reqwest::Client,
    pub analytics: &'a str,
}

impl Throughput<'_> {
    /// One round over `events`: both sides, in the order asked.
    pub async fn round(&self, events: &[Event], ours_first: bool) -> anyhow::Result<Round> {
        let raw_messages = self.raw_messages(events)?;
        let (ours, raw) = if ours_first {
            let ours = self.ours(events).await?;
            (ours, self.raw(&raw_messages).await?)
        } else {
            let raw = self.raw(&raw_messages).await?;
            (self.ours(events).await?, raw)
        };
        let rate = |d: Duration| events.len() as f64 / d.as_secs_f64().max(1e-9);
        let (ours_events_per_s, raw_msgs_per_s) = (rate(ours), rate(raw));
        Ok(Round {
            ours_events_per_s: ours_events_per_s.round(),
            raw_msgs_per_s: raw_msgs_per_s.round(),
            ratio: (ours_events_per_s / raw_msgs_per_s * 1000.0).round() / 1000.0,
            ours_first,
        })
    }

    /// The mean size of a message as the server stores it (header block and
    /// body), the same on both sides.
    pub fn mean_message_bytes(&self, events: &[Event]) -> anyhow::Result<f64> {
        let mut total = 0usize;
        for event in events {
            let outbound = self.publisher.prepare(event)?;
            let headers: usize = outbound
                .headers()
                .iter()
                .map(|(name, values)| {
                    values
                        .iter()
                        .map(|v| AsRef::<str>::as_ref(name).len() + v.as_str().len() + 4)
                        .sum::<usize>()
                })
                .sum();
            // "NATS/1.0\r\n", "name: value\r\n" per header, a closing "\r\n".
            total += 12 + headers + outbound.body.len();
        }
        Ok(total as f64 / events.len().max(1) as f64)
    }

    async fn ours(&self, events: &[Event]) -> anyhow::Result<Duration> {
        let window = self.backbone.publisher.max_inflight;
        let before = applied::handled(self.http, self.analytics).await?;
        let start = Instant::now();
        let mut pending: VecDeque<PendingPublish<'_>> = VecDeque::with_capacity(window);
        for event in events {
            let outbound = self.publisher.prepare(event)?;
            pending.push_back(self.publisher.send(outbound).await?);
            if pending.len() >= window {
                pending
                    .pop_front()
                    .expect("a full window")
                    .confirm()
                    .await?;
            }
        }
        for publish in pending {
            publish.confirm().await?;
        }
        // Every few milliseconds: well under 1% of a round, and the counter
        // is a cheap read of the service's metrics.
        applied::wait_handled(
            self.http,
            self.analytics,
            before + events.len() as u64,
            Duration::from_millis(5),
            DEADLINE,
        )
        .await?;
        Ok(start.elapsed())
    }

    fn raw_messages(&self, events: &[Event]) -> anyhow::Result<Vec<RawMessage>> {
        events
            .iter()
            .map(|event| {
                let outbound = self.publisher.prepare(event)?;
                let rest = outbound
                    .subject
                    .as_str()
                    .strip_prefix(EVENTS_PREFIX)
                    .context("an event subject outside the events prefix")?;
                Ok(RawMessage {
                    subject: Subject::from(format!("{RAW_PREFIX}{rest}")),
                    message_id: outbound.event_id.to_string(),
                    event_type: outbound.event_type.as_str(),
                    schema_version: outbound.event_type.schema_version_str(),
                    traceparent: outbound.trace.traceparent,
                    payload: outbound.body,
                })
            })
            .collect()
    }

    async fn raw(&self, messages: &[RawMessage]) -> anyhow::Result<Duration> {
        let js = jetstream::new(self.raw_publishing.clone());
        let streams = &self.backbone.streams;
        let consumer_settings = &self.backbone.consumer;
        // One stream kept across rounds, as ours are: in round k both sides
        // start with k - 1 rounds of messages stored (and their ids in the
        // duplicate window), not raw with an empty store and ours with a
        // full one. (Measured: raw then slowed by a few percent in later
        // rounds; ours slows more, see docs/benchmarks.md.) One stream with
        // every partition's settings and their byte limits together.
        let first = streams
            .partitions
            .all()
            .next()
            .expect("at least one partition");
        js.get_or_create_stream(stream::Config {
            name: RAW_STREAM.into(),
            description: Some("shopmesh bench: the raw JetStream baseline".into()),
            subjects: vec![format!("{RAW_PREFIX}.>")],
            max_bytes: i64::try_from(streams.max_bytes).unwrap_or(i64::MAX),
            ..events_stream_config(streams, first)
        })
        .await
        .context("creating the raw baseline's stream")?;
        // One durable consumer kept too, as analytics keeps its own: each
        // round it goes on where the last one stopped.
        let consumer: jetstream::consumer::PullConsumer =
            jetstream::new(self.raw_consuming.clone())
                .get_stream(RAW_STREAM)
                .await?
                .get_or_create_consumer(
                    "raw",
                    jetstream::consumer::pull::Config {
                        durable_name: Some("raw".into()),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: consumer_settings.ack_wait,
                        max_ack_pending: consumer_settings.max_ack_pending,
                        deliver_policy: jetstream::consumer::DeliverPolicy::All,
                        ..Default::default()
                    },
                )
                .await
                .context("creating the raw baseline's consumer")?;

        let start = Instant::now();
        let reader = tokio::spawn(drain(consumer, messages.len(), consumer_settings.batch));
        let window = self.backbone.publisher.max_inflight;
        let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
        for message in messages {
            let mut headers = HeaderMap::new();
            headers.insert(MESSAGE_ID, message.message_id.as_str());
            headers.insert(EVENT_TYPE, message.event_type);
            headers.insert(SCHEMA_VERSION, message.schema_version);
            headers.insert(ENCODING, codec::ENCODING);
            headers.insert(TRACEPARENT, message.traceparent.as_str());
            let publish = PublishMessage::build()
                .payload(message.payload.clone())
                .headers(headers);
            pending.push_back(js.send_publish(message.subject.clone(), publish).await?);
            if pending.len() >= window {
                pending.pop_front().expect("a full window").await?;
            }
        }
        for ack in pending {
            ack.await?;
        }
        match tokio::time::timeout(DEADLINE, reader).await {
            Ok(read) => read??,
            Err(_) => bail!("the raw consumer did not receive every message within {DEADLINE:?}"),
        }
        Ok(start.elapsed())
    }
}

/// Pulls and acks `expected` messages.
async fn drain(
    consumer: jetstream::consumer::PullConsumer,
    expected: usize,
    batch: usize,
) -> anyhow::Result<()> {
    if expected == 0 {
        return Ok(());
    }
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await?;
    let mut seen = 0;
    while seen < expected {
        match messages.next().await {
            Some(Ok(message)) => {
                message
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
                seen += 1;
            }
            // Heartbeat hiccups: the stream goes on, as ours does.
            Some(Err(_)) => continue,
            None => bail!("the raw pull stream ended after {seen} of {expected} messages"),
        }
    }
    Ok(())
}
