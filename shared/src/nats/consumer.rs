//! The consumer runner: one durable pull consumer per owned partition, batched
//! pulls, and a fixed policy for every outcome of a message:
//!
//! | outcome                                    | action                               |
//! |--------------------------------------------|--------------------------------------|
//! | handler succeeded                          | ack                                  |
//! | handler failed, transient                  | nak with delay (redelivered later)   |
//! | body or headers undecodable                | republish to dead letter, then term  |
//! | type or version from a newer producer      | ack and count (it stays in the stream) |
//!
//! Messages of one partition are handled one at a time, in stream order; the
//! partitions run concurrently. On shutdown each partition stops pulling,
//! finishes the message in hand and what the client has already buffered, then
//! returns; anything the server sent after that is redelivered after `ack_wait`.

use super::BackboneError;
use super::headers::{self, MessageDecodeError, decode_message};
use crate::events::Event;
use crate::metrics::metrics;
use crate::settings::{ConsumerSettings, StreamSettings};
use crate::subjects::{Partition, dead_letter_subject, partition_filter};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::{FutureExt, StreamExt};
use opentelemetry::trace::TraceContextExt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// One decoded event handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Event,
    pub partition: Partition,
    /// The message's sequence in the stream: increasing within a partition, the
    /// key for exactly-once effects.
    pub stream_sequence: u64,
    /// 1 on first delivery, more on redelivery.
    pub delivered: i64,
    pub subject: String,
}

/// How a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying later (a dependency is down): the message is nak'ed with delay.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed: the message goes to the dead-letter subject.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

/// Handles decoded events. Called for one partition at a time, in order.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Consecutive deliveries of one partition, in stream order, each with
    /// its CONSUMER span: what the client already held when the first one
    /// arrived (at most the pull batch). The default hands them to `handle`
    /// one at a time inside their spans; a handler that applies a batch in
    /// one step overrides it (one cross-thread hop instead of one per event).
    /// Returns one outcome per delivery, in order; a delivery without an
    /// outcome is neither acked nor nak'ed and comes back after `ack_wait`.
    fn handle_batch(
        &self,
        batch: Vec<(Delivery, tracing::Span)>,
    ) -> impl Future<Output = Vec<Result<(), HandlerError>>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(batch.len());
            for (delivery, span) in batch {
                outcomes.push(self.handle(delivery).instrument(span).await);
            }
            outcomes
        }
    }
}

/// Counters of one runner, across its partitions.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub handled: AtomicU64,
    pub nakked: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub skipped_newer: AtomicU64,
    pub dead_letter_failures: AtomicU64,
}

/// A copy of [`ConsumerStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerStatsSnapshot {
    pub handled: u64,
    pub nakked: u64,
    pub dead_lettered: u64,
    pub skipped_newer: u64,
    pub dead_letter_failures: u64,
}

impl ConsumerStats {
    pub fn snapshot(&self) -> ConsumerStatsSnapshot {
        ConsumerStatsSnapshot {
            handled: self.handled.load(Ordering::Relaxed),
            nakked: self.nakked.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            skipped_newer: self.skipped_newer.load(Ordering::Relaxed),
            dead_letter_failures: self.dead_letter_failures.load(Ordering::Relaxed),
        }
    }
}

/// The durable consumer name of `group`'s consumer for `partition`.
pub fn consumer_name(group: &str, partition: Partition) -> String {
    format!("{group}-p{:03}", partition.index())
}

/// Runs durable pull consumers for a set of partitions.
pub struct ConsumerRunner<H> {
    js: jetstream::Context,
    group: String,
    partitions: Vec<Partition>,
    streams: StreamSettings,
    settings: ConsumerSettings,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
}

impl<H: EventHandler> ConsumerRunner<H> {
    /// `group` names the consuming application ("analytics"); it prefixes the
    /// durable consumer names and names the dead-letter subject.
    pub fn new(
        js: jetstream::Context,
        group: impl Into<String>,
        partitions: Vec<Partition>,
        streams: &StreamSettings,
        settings: &ConsumerSettings,
        handler: Arc<H>,
    ) -> Self {
        Self {
            js,
            group: group.into(),
            partitions,
            streams: streams.clone(),
            settings: settings.clone(),
            handler,
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Creates (or finds) every partition's durable consumer, so that messages
    /// published from now on are kept for them even before `run` pulls.
    pub async fn ensure_consumers(
        &self,
    ) -> Result<Vec<jetstream::consumer::PullConsumer>, BackboneError> {
        let stream = self
            .js
            .get_stream(&self.streams.events_stream)
            .await
            .map_err(|source| BackboneError::StreamUnavailable {
                stream: self.streams.events_stream.clone(),
                source,
            })?;
        let mut consumers = Vec::with_capacity(self.partitions.len());
        for &partition in &self.partitions {
            let name = consumer_name(&self.group, partition);
            let config = pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!("{} partition {partition}", self.group)),
                filter_subject: partition_filter(partition),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: self.settings.ack_wait,
                max_ack_pending: self.settings.max_ack_pending,
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            };
            let consumer =
                stream
                    .get_or_create_consumer(&name, config)
                    .await
                    .map_err(|source| BackboneError::Consumer {
                        consumer: name.clone(),
                        source,
                    })?;
            consumers.push(consumer);
        }
        Ok(consumers)
    }

    /// Consumes until `shutdown` is cancelled, then drains and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BackboneError> {
        let consumers = self.ensure_consumers().await?;
        let shared = Arc::new(PartitionWorker {
            js: self.js,
            dead_letter_subject: dead_letter_subject(&self.group),
            settings: self.settings,
            handler: self.handler,
            stats: self.stats,
        });
        let mut tasks = JoinSet::new();
        for (consumer, partition) in consumers.into_iter().zip(self.partitions) {
            let worker = shared.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { worker.run_partition(consumer, partition, shutdown).await });
        }
        while let Some(result) = tasks.join_next().await {
            result?;
        }
        Ok(())
    }
}

struct PartitionWorker<H> {
    js: jetstream::Context,
    dead_letter_subject: String,
    settings: ConsumerSettings,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
}

impl<H: EventHandler> PartitionWorker<H> {
    async fn run_partition(
        &self,
        consumer: jetstream::consumer::PullConsumer,
        partition: Partition,
        shutdown: CancellationToken,
    ) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let messages = consumer
                .stream()
                .max_messages_per_batch(self.settings.batch)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await;
            let mut messages = match messages {
                Ok(messages) => messages,
                Err(error) => {
                    failures += 1;
                    let delay = Duration::from_millis(100 * u64::from(failures.min(50)));
                    tracing::warn!(%partition, %error, "cannot open pull stream; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => None,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        failures = 0;
                        // With it, whatever the client already holds, up to
                        // a pull batch: handled as one batch, in order.
                        let mut batch = vec![message];
                        while batch.len() < self.settings.batch {
                            match messages.next().now_or_never() {
                                Some(Some(Ok(message))) => batch.push(message),
                                Some(Some(Err(error))) => {
                                    tracing::warn!(%partition, %error, "pull stream error");
                                    break;
                                }
                                _ => break,
                            }
                        }
                        self.process(batch, partition).await;
                    }
                    Some(Err(error)) => {
                        // Missed heartbeats and the like: the stream recovers by
                        // itself; log and keep reading.
                        tracing::warn!(%partition, %error, "pull stream error");
                    }
                    None => break,
                }
            }
            // Drain: what the client already holds is handled before leaving.
            while let Some(Some(Ok(message))) = messages.next().now_or_never() {
                self.process(vec![message], partition).await;
            }
        }
    }

    /// Decodes each message; the undecodable ones are dead-lettered or
    /// skipped right away, the others go to the handler as one batch and are
    /// settled by their outcomes.
    async fn process(&self, messages: Vec<jetstream::Message>, partition: Partition) {
        let mut decoded = Vec::with_capacity(messages.len());
        for message in messages {
            let (stream_sequence, delivered) = match message.info() {
                Ok(info) => {
                    metrics()
                        .consumer_lag
                        .with_label_values(&[&partition.to_string()])
                        .set(info.pending as i64);
                    (info.stream_sequence, info.delivered)
                }
                Err(_) => (0, 1),
            };
            let subject = message.subject.to_string();
            match decode_message(message.headers.as_ref(), &message.payload) {
                Ok(event) => {
                    let delivery = Delivery {
                        event,
                        partition,
                        stream_sequence,
                        delivered,
                        subject,
                    };
                    let span = consumer_span(&message, &delivery);
                    decoded.push((message, delivery, span));
                }
                Err(error) if error.is_from_newer_producer() => {
                    self.stats.skipped_newer.fetch_add(1, Ordering::Relaxed);
                    record_outcome("skipped_newer");
                    tracing::info!(%subject, stream_sequence, %error, "skipping event from a newer producer");
                    ack(&message, AckKind::Ack).await;
                }
                Err(error) => {
                    self.dead_letter(&message, &subject, stream_sequence, &error)
                        .await
                }
            }
        }
        if decoded.is_empty() {
            return;
        }
        let mut settle = Vec::with_capacity(decoded.len());
        let batch = decoded
            .into_iter()
            .map(|(message, delivery, span)| {
                settle.push((message, delivery.stream_sequence));
                (delivery, span)
            })
            .collect();
        let outcomes = self.handler.handle_batch(batch).await;
        for ((message, stream_sequence), outcome) in settle.iter().zip(outcomes) {
            self.settle(message, stream_sequence, outcome).await;
        }
    }

    async fn settle(
        &self,
        message: &jetstream::Message,
        stream_sequence: &u64,
        outcome: Result<(), HandlerError>,
    ) {
        let stream_sequence = *stream_sequence;
        match outcome {
            Ok(()) => {
                self.stats.handled.fetch_add(1, Ordering::Relaxed);
                record_outcome("handled");
                ack(message, AckKind::Ack).await;
            }
            Err(HandlerError::Transient(error)) => {
                self.stats.nakked.fetch_add(1, Ordering::Relaxed);
                record_outcome("nakked");
                tracing::warn!(stream_sequence, error = %format!("{error:#}"), "handler failed; will retry");
                ack(message, AckKind::Nak(Some(self.settings.nak_delay))).await;
            }
            Err(HandlerError::Permanent(error)) => {
                let subject = message.subject.to_string();
                self.dead_letter(message, &subject, stream_sequence, &error)
                    .await;
            }
        }
    }

    /// Republishes the message, untouched, to the dead-letter subject with the
    /// reason in headers, waits for that to be stored, then terminates the
    /// original. If the dead letter cannot be stored, the original is nak'ed
    /// instead: nothing is dropped.
    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        subject: &str,
        stream_sequence: u64,
        error: &(dyn DeadLetterReason + Sync),
    ) {
        let mut dead_headers = message.headers.clone().unwrap_or_default();
        dead_headers.insert(headers::DEAD_LETTER_REASON, error.reason());
        let detail: String = error.detail().chars().take(512).collect();
        dead_headers.insert(headers::DEAD_LETTER_ERROR, detail.as_str());
        dead_headers.insert(headers::DEAD_LETTER_SUBJECT, subject);
        dead_headers.insert(
            headers::DEAD_LETTER_SEQUENCE,
            stream_sequence.to_string().as_str(),
        );
        // The dead-letter stream does not de-duplicate by the original id: a
        // second copy of bad evidence is harmless, a lost one is not.
        dead_headers.insert(
            headers::MESSAGE_ID,
            format!("dead-{}-{stream_sequence}", self.dead_letter_subject).as_str(),
        );
        let stored = async {
            self.js
                .publish_with_headers(
                    self.dead_letter_subject.clone(),
                    dead_headers,
                    message.payload.clone(),
                )
                .await?
                .await
        }
        .await;
        match stored {
            Ok(_) => {
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                record_outcome("dead_lettered");
                tracing::warn!(%subject, stream_sequence, reason = error.reason(), error = %detail, "message dead-lettered");
                ack(message, AckKind::Term).await;
            }
            Err(publish_error) => {
                self.stats
                    .dead_letter_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(%subject, stream_sequence, error = %publish_error, "cannot store dead letter; will retry");
                ack(message, AckKind::Nak(Some(self.settings.nak_delay))).await;
            }
        }
    }
}

/// The CONSUMER span of one delivery, child of the producer's span carried
/// in the message headers. Parent-child (not a link): the event's producer
/// span is the cause of this work, so one user action stays one connected
/// trace.
fn consumer_span(message: &jetstream::Message, delivery: &Delivery) -> tracing::Span {
    let parent = message
        .headers
        .as_ref()
        .map(headers::extract_context)
        .unwrap_or_default();
    let span = tracing::info_span!(
        "process",
        otel.name = %format_args!("process {}", delivery.event.event_type().as_str()),
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.destination.name = %delivery.subject,
        messaging.message.id = %delivery.event.meta.event_id,
        messaging.nats.stream_sequence = delivery.stream_sequence,
        messaging.nats.partition = delivery.partition.index(),
    );
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}

/// What a dead letter records about its cause.
trait DeadLetterReason {
    fn reason(&self) -> &'static str;
    fn detail(&self) -> String;
}

impl DeadLetterReason for MessageDecodeError {
    fn reason(&self) -> &'static str {
        MessageDecodeError::reason(self)
    }
    fn detail(&self) -> String {
        self.to_string()
    }
}

impl DeadLetterReason for anyhow::Error {
    fn reason(&self) -> &'static str {
        "handler_rejected"
    }
    fn detail(&self) -> String {
        format!("{self:#}")
    }
}

fn record_outcome(outcome: &str) {
    metrics()
        .consumer_messages
        .with_label_values(&[outcome])
        .inc();
}

/// Acks are fire-and-forget: a lost ack means a redelivery, which handlers
/// absorb by stream sequence; waiting for each would halve throughput.
async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        tracing::warn!(%error, "ack failed; the message will be redelivered");
    }
}
