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
//!
//! Deliveries lost on the way (the client's pull went to a server that died,
//! a pull stream was replaced) come back only after `ack_wait`, behind later
//! ones. A handler that keeps exactly-once by "last stream sequence applied"
//! would then skip them for good, so the runner watches the consumer
//! sequence (the server numbers every delivery 1, 2, 3, ...): when it skips
//! a number, nothing after the gap is handled; the partition's consumer is
//! recreated to start at the handler's [`EventHandler::resume_sequence`]
//! and delivers in order again. Handlers without one get the redelivery.

use super::BackboneError;
use super::headers::{self, MessageDecodeError, decode_message};
use crate::events::{Event, EventType};
use crate::metrics::metrics;
use crate::settings::{ConsumerSettings, StreamSettings};
use crate::subjects::{Partition, dead_letter_subject};
use crate::telemetry::EventSpan;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::{FutureExt, StreamExt};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
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

    /// The stream sequence this handler needs next in `partition`, for a
    /// handler whose effects depend on stream order (exactly-once by last
    /// sequence applied): after deliveries were lost on the way, the
    /// partition's consumer restarts there. `None` (the default) for
    /// handlers that take redeliveries in any order: the lost ones come back
    /// after `ack_wait`.
    fn resume_sequence(&self, partition: Partition) -> impl Future<Output = Option<u64>> + Send {
        let _ = partition;
        async { None }
    }

    /// Consecutive deliveries of one partition, in stream order, each with
    /// its CONSUMER span: what the client already held when the first one
    /// arrived (at most the pull batch). The default hands them to `handle`
    /// one at a time, each inside a `tracing` span "handle" continuing its
    /// CONSUMER span (so that the handler's own spans and logs join the
    /// event's trace); a handler that applies a batch in one step overrides
    /// it (one cross-thread hop instead of one per event) and continues the
    /// spans as it sees fit. Returns one outcome per delivery, in order; a
    /// delivery without an outcome is neither acked nor nak'ed and comes
    /// back after `ack_wait`.
    fn handle_batch(
        &self,
        batch: Vec<(Delivery, EventSpan)>,
    ) -> impl Future<Output = Vec<Result<(), HandlerError>>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(batch.len());
            for (delivery, consumer_span) in batch {
                let span = tracing::info_span!(
                    "handle",
                    event_type = delivery.event.event_type().as_str()
                );
                if let Some(cx) = consumer_span.context() {
                    let _ = span.set_parent(cx.clone());
                }
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
    /// Partition consumers restarted at the handler's resume sequence.
    pub restarts: AtomicU64,
}

/// A copy of [`ConsumerStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerStatsSnapshot {
    pub handled: u64,
    pub nakked: u64,
    pub dead_lettered: u64,
    pub skipped_newer: u64,
    pub dead_letter_failures: u64,
    pub restarts: u64,
}

impl ConsumerStats {
    pub fn snapshot(&self) -> ConsumerStatsSnapshot {
        ConsumerStatsSnapshot {
            handled: self.handled.load(Ordering::Relaxed),
            nakked: self.nakked.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            skipped_newer: self.skipped_newer.load(Ordering::Relaxed),
            dead_letter_failures: self.dead_letter_failures.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

/// The durable consumer name of `group`'s consumer for `partition`.
pub fn consumer_name(group: &str, partition: Partition) -> String {
    format!("{group}-p{:03}", partition.index())
}

/// The durable pull consumer of `group` for `partition`, delivering from
/// `start_sequence` (from the beginning without one).
fn consumer_config(
    group: &str,
    settings: &ConsumerSettings,
    partition: Partition,
    start_sequence: Option<u64>,
) -> pull::Config {
    let deliver_policy = match start_sequence {
        Some(start_sequence) => {
            jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence }
        }
        None => jetstream::consumer::DeliverPolicy::All,
    };
    pull::Config {
        durable_name: Some(consumer_name(group, partition)),
        description: Some(format!("{group} partition {partition}")),
        // No filter: the partition's stream holds that partition only, and
        // an unfiltered consumer is the cheapest kind for the server.
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_ack_pending: settings.max_ack_pending,
        deliver_policy,
        ..Default::default()
    }
}

/// `partition`'s events stream.
async fn partition_stream(
    js: &jetstream::Context,
    streams: &StreamSettings,
    partition: Partition,
) -> Result<jetstream::stream::Stream, BackboneError> {
    let name = streams.partition_stream(partition);
    js.get_stream(&name)
        .await
        .map_err(|source| BackboneError::StreamUnavailable {
            stream: name,
            source,
        })
}

/// Replaces `group`'s durable consumer for `partition` with a new one that
/// delivers from `start_sequence` (from the beginning without one): its
/// pending and acknowledged state is dropped, so what it delivers next is
/// exactly the partition's messages from there, in order.
pub async fn restart_consumer(
    js: &jetstream::Context,
    streams: &StreamSettings,
    settings: &ConsumerSettings,
    group: &str,
    partition: Partition,
    start_sequence: Option<u64>,
) -> Result<jetstream::consumer::PullConsumer, BackboneError> {
    let stream = partition_stream(js, streams, partition).await?;
    let name = consumer_name(group, partition);
    if let Err(error) = stream.delete_consumer(&name).await {
        // Not found is the normal case on a first start; anything else makes
        // the creation below fail (a consumer of that name with another
        // start), and the caller retries.
        tracing::debug!(consumer = %name, %error, "no consumer to delete");
    }
    stream
        .create_consumer(consumer_config(group, settings, partition, start_sequence))
        .await
        .map_err(|source| BackboneError::Consumer {
            consumer: name,
            source,
        })
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
        let mut consumers = Vec::with_capacity(self.partitions.len());
        for &partition in &self.partitions {
            let stream = partition_stream(&self.js, &self.streams, partition).await?;
            let name = consumer_name(&self.group, partition);
            let config = consumer_config(&self.group, &self.settings, partition, None);
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
            group: self.group,
            streams: self.streams,
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
    group: String,
    streams: StreamSettings,
    settings: ConsumerSettings,
    handler: Arc<H>,
    stats: Arc<ConsumerStats>,
}

impl<H: EventHandler> PartitionWorker<H> {
    async fn run_partition(
        &self,
        mut consumer: jetstream::consumer::PullConsumer,
        partition: Partition,
        shutdown: CancellationToken,
    ) {
        let mut failures = 0u32;
        let mut deliveries =
            DeliveryCounter::after(consumer.cached_info().delivered.consumer_sequence);
        // Set when deliveries were lost: the stream sequence to restart at.
        let mut restart_at = None;
        while !shutdown.is_cancelled() {
            if let Some(start) = restart_at {
                match restart_consumer(
                    &self.js,
                    &self.streams,
                    &self.settings,
                    &self.group,
                    partition,
                    Some(start),
                )
                .await
                {
                    Ok(restarted) => {
                        failures = 0;
                        restart_at = None;
                        deliveries = DeliveryCounter::after(0);
                        consumer = restarted;
                        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
                        metrics()
                            .consumer_restarts
                            .with_label_values(&[&partition.to_string()])
                            .inc();
                        tracing::info!(%partition, start_sequence = start, "partition consumer restarted");
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(%partition, error = %format!("{error:#}"), "cannot restart partition consumer; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(retry_delay(failures)) => continue,
                        }
                    }
                }
            }
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
                    tracing::warn!(%partition, %error, "cannot open pull stream; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(retry_delay(failures)) => continue,
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
                        restart_at = self.process(batch, partition, &mut deliveries).await;
                        if restart_at.is_some() {
                            // What this pull stream still holds or receives
                            // comes after the gap: dropped with it.
                            break;
                        }
                    }
                    Some(Err(error)) => {
                        // Missed heartbeats and the like: the stream recovers by
                        // itself; log and keep reading.
                        tracing::warn!(%partition, %error, "pull stream error");
                    }
                    None => break,
                }
            }
            if restart_at.is_some() {
                continue;
            }
            // Drain: what the client already holds is handled before leaving,
            // up to a gap (restarted at the loop's top unless shutting down).
            while let Some(Some(Ok(message))) = messages.next().now_or_never() {
                restart_at = self
                    .process(vec![message], partition, &mut deliveries)
                    .await;
                if restart_at.is_some() {
                    break;
                }
            }
        }
    }

    /// Hands the messages to the handler in order, up to the first one that
    /// follows lost deliveries. There, a handler with a resume sequence
    /// stops the batch: the rest is left unsettled and the sequence
    /// returned, for the partition's consumer to restart at. For other
    /// handlers the gap only is logged.
    async fn process(
        &self,
        messages: Vec<jetstream::Message>,
        partition: Partition,
        deliveries: &mut DeliveryCounter,
    ) -> Option<u64> {
        let mut before_gap = Vec::with_capacity(messages.len());
        for message in messages {
            let skipped = match message.info() {
                Ok(info) => deliveries.skipped_before(info.consumer_sequence),
                Err(_) => None,
            };
            if let Some(skipped) = skipped {
                self.handle(std::mem::take(&mut before_gap), partition)
                    .await;
                match self.handler.resume_sequence(partition).await {
                    Some(start) => {
                        tracing::warn!(
                            %partition,
                            lost_deliveries = skipped,
                            start_sequence = start,
                            "deliveries lost on the way; restarting the partition's consumer where the handler stands"
                        );
                        return Some(start);
                    }
                    None => tracing::info!(
                        %partition,
                        lost_deliveries = skipped,
                        "deliveries lost on the way; they come back after ack_wait"
                    ),
                }
            }
            before_gap.push(message);
        }
        self.handle(before_gap, partition).await;
        None
    }

    /// Decodes each message; the undecodable ones are dead-lettered or
    /// skipped right away, the others go to the handler as one batch and are
    /// settled by their outcomes.
    async fn handle(&self, messages: Vec<jetstream::Message>, partition: Partition) {
        if messages.is_empty() {
            return;
        }
        let mut decoded = Vec::with_capacity(messages.len());
        let mut pending = None;
        for message in messages {
            let (stream_sequence, delivered) = match message.info() {
                Ok(info) => {
                    pending = Some(info.pending);
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
        // Metrics once per batch, not per message: a labelled metric is a
        // hash and a lock per lookup.
        if let Some(pending) = pending {
            metrics()
                .consumer_lag
                .with_label_values(&[&partition.to_string()])
                .set(pending as i64);
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
        let mut handled = 0;
        for ((message, stream_sequence), outcome) in settle.iter().zip(outcomes) {
            if self.settle(message, *stream_sequence, outcome).await {
                handled += 1;
            }
        }
        if handled > 0 {
            self.stats.handled.fetch_add(handled, Ordering::Relaxed);
            metrics()
                .consumer_messages
                .with_label_values(&["handled"])
                .inc_by(handled);
        }
    }

    /// Acts on one outcome; true when the message was handled (and acked),
    /// which the caller counts for the whole batch.
    async fn settle(
        &self,
        message: &jetstream::Message,
        stream_sequence: u64,
        outcome: Result<(), HandlerError>,
    ) -> bool {
        match outcome {
            Ok(()) => {
                ack(message, AckKind::Ack).await;
                return true;
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
        false
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
/// trace. Made once per message, hence an [`EventSpan`] (no `tracing`
/// registry) and attributes built without formatting where the value is
/// already text.
fn consumer_span(message: &jetstream::Message, delivery: &Delivery) -> EventSpan {
    if !EventSpan::enabled() {
        return EventSpan::none();
    }
    let parent = message.headers.as_ref().and_then(headers::remote_parent);
    EventSpan::start(
        process_span_name(delivery.event.event_type()),
        SpanKind::Consumer,
        parent,
        module_path!(),
        [
            KeyValue::new("messaging.system", "nats"),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", delivery.subject.clone()),
            KeyValue::new(
                "messaging.message.id",
                delivery.event.meta.event_id.to_string(),
            ),
            KeyValue::new(
                "messaging.nats.stream_sequence",
                delivery.stream_sequence as i64,
            ),
            KeyValue::new(
                "messaging.nats.partition",
                i64::from(delivery.partition.index()),
            ),
        ],
    )
}

/// `process <event type>`, made once per type rather than once per message.
fn process_span_name(event_type: EventType) -> &'static str {
    static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        EventType::ALL
            .iter()
            .map(|t| &*format!("process {}", t.as_str()).leak())
            .collect()
    });
    NAMES[event_type as usize]
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

/// Pause before retrying a consumer step that failed `failures` times in a
/// row: 0.1 s more per failure, at most 5 s.
fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(100 * u64::from(failures.min(50)))
}

/// The consumer sequence of the last delivery received. The server numbers
/// every delivery of a consumer, first ones and redeliveries alike, 1, 2,
/// 3, ...; deliveries reach the client in that order, so a skipped number
/// is a delivery that was sent and never arrived. A number going back (a
/// new consumer leader that had not yet heard of the last deliveries)
/// starts counting again from there.
#[derive(Debug, Clone, Copy)]
struct DeliveryCounter {
    last: u64,
}

impl DeliveryCounter {
    /// Counting after the consumer's `delivered` sequence when it was read.
    fn after(last: u64) -> Self {
        Self { last }
    }

    /// Records a delivery; how many deliveries were skipped before it, if any.
    fn skipped_before(&mut self, consumer_sequence: u64) -> Option<u64> {
        let skipped = consumer_sequence.saturating_sub(self.last.saturating_add(1));
        self.last = consumer_sequence;
        (skipped > 0).then_some(skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::{DeliveryCounter, process_span_name};
    use crate::events::EventType;

    #[test]
    fn each_event_type_has_its_process_span_name() {
        for event_type in EventType::ALL {
            assert_eq!(
                process_span_name(*event_type),
                format!("process {}", event_type.as_str())
            );
        }
    }

    #[test]
    fn consecutive_deliveries_skip_nothing() {
        let mut counter = DeliveryCounter::after(0);
        assert_eq!(counter.skipped_before(1), None);
        assert_eq!(counter.skipped_before(2), None);
        assert_eq!(counter.skipped_before(3), None);
    }

    #[test]
    fn a_skipped_number_counts_the_lost_deliveries() {
        let mut counter = DeliveryCounter::after(4);
        assert_eq!(counter.skipped_before(5), None);
        assert_eq!(counter.skipped_before(9), Some(3));
        assert_eq!(counter.skipped_before(10), None);
    }

    #[test]
    fn the_first_delivery_after_the_start_is_checked_too() {
        assert_eq!(DeliveryCounter::after(0).skipped_before(3), Some(2));
        assert_eq!(DeliveryCounter::after(7).skipped_before(8), None);
    }

    #[test]
    fn a_number_going_back_restarts_the_count() {
        let mut counter = DeliveryCounter::after(0);
        for n in 1..=10 {
            assert_eq!(counter.skipped_before(n), None);
        }
        assert_eq!(counter.skipped_before(7), None);
        assert_eq!(counter.skipped_before(8), None);
        assert_eq!(counter.skipped_before(10), Some(1));
    }
}
