//! Publishing events to JetStream: encoded once, with the event id as
//! `Nats-Msg-Id` (the server drops a repeat inside the duplicate window), the
//! event type and W3C `traceparent` in headers, a bounded number of
//! unacknowledged publishes, and retries with exponential backoff.
//!
//! A retry re-sends the same bytes with the same message id, so a publish whose
//! ack was lost but which did land is not stored twice.

use super::headers::{self, TraceHeaders};
use crate::codec::{self, EncodeError};
use crate::events::{Event, EventId, EventType};
use crate::metrics::metrics;
use crate::settings::{PublisherSettings, StreamSettings};
use crate::subjects::{PartitionCount, event_subject, partition_for};

use async_nats::jetstream::{
    self,
    context::{PublishAckFuture, PublishErrorKind},
    message::PublishMessage,
};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Why an event was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(
        "publishing {event_type} {event_id} to {subject} failed after {attempts} attempts: {source}"
    )]
    RetriesExhausted {
        event_id: EventId,
        event_type: EventType,
        subject: String,
        attempts: u32,
        #[source]
        source: jetstream::context::PublishError,
    },
    #[error("publishing {event_type} {event_id} to {subject} was refused: {source}")]
    Refused {
        event_id: EventId,
        event_type: EventType,
        subject: String,
        #[source]
        source: jetstream::context::PublishError,
    },
}

/// A stored event, as the server acknowledged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub event_id: EventId,
    pub stream_sequence: u64,
    /// The server had this message id already (inside the duplicate window) and
    /// did not store it again.
    pub duplicate: bool,
}

/// Counters of one publisher, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct PublisherStats {
    pub published: AtomicU64,
    pub duplicates: AtomicU64,
    pub retries: AtomicU64,
    pub failed: AtomicU64,
}

/// An event ready to send: encoded once, with its subject and trace headers.
/// Keep it to retry (the outbox does) without encoding again; its message
/// headers are built at each send, so a first send clones nothing.
#[derive(Debug, Clone)]
pub struct OutboundEvent {
    pub event_id: EventId,
    pub event_type: EventType,
    pub subject: Subject,
    pub trace: TraceHeaders,
    pub body: Bytes,
}

impl OutboundEvent {
    /// The message headers: id, type, version, encoding and trace.
    pub fn headers(&self) -> HeaderMap {
        headers::message_headers(&self.event_id, self.event_type, &self.trace)
    }
}

/// Publishes events to the events stream. Cheap to clone.
#[derive(Clone)]
pub struct EventPublisher {
    js: jetstream::Context,
    partitions: PartitionCount,
    /// Every (event type, partition) subject, built once: a `Subject` clone is
    /// a reference-count bump, a `String` subject is copied at every publish.
    subjects: Arc<[Subject]>,
    settings: PublisherSettings,
    stats: Arc<PublisherStats>,
}

impl EventPublisher {
    pub fn new(
        client: async_nats::Client,
        publisher: &PublisherSettings,
        streams: &StreamSettings,
    ) -> Self {
        let partitions = streams.partitions;
        let subjects = EventType::ALL
            .iter()
            .flat_map(|&event_type| {
                partitions
                    .all()
                    .map(move |partition| Subject::from(event_subject(event_type, partition)))
            })
            .collect();
        Self {
            js: super::jetstream_context(client, publisher),
            partitions,
            subjects,
            settings: publisher.clone(),
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<PublisherStats> {
        self.stats.clone()
    }

    /// Encodes `event` with the trace context `cx` (the outbox passes the one it
    /// stored with the row; a new root is minted when `cx` has no span).
    pub fn prepare_in_context(
        &self,
        event: &Event,
        cx: &opentelemetry::Context,
    ) -> Result<OutboundEvent, PublishError> {
        self.prepare_with_trace(event, TraceHeaders::from_context(cx))
    }

    fn subject_of(&self, event: &Event) -> Subject {
        let partition = partition_for(event.meta.user_id.as_ref(), self.partitions);
        let row = event.event_type() as usize * usize::from(self.partitions.get());
        self.subjects[row + usize::from(partition.index())].clone()
    }

    /// Encodes `event` with trace headers captured earlier (for work queued
    /// off the request's task).
    pub fn prepare_with_trace(
        &self,
        event: &Event,
        trace: TraceHeaders,
    ) -> Result<OutboundEvent, PublishError> {
        Ok(OutboundEvent {
            event_id: event.meta.event_id,
            event_type: event.event_type(),
            subject: self.subject_of(event),
            trace,
            body: codec::encode(event)?,
        })
    }

    /// Encodes `event` under the current `tracing` span's context.
    pub fn prepare(&self, event: &Event) -> Result<OutboundEvent, PublishError> {
        self.prepare_in_context(event, &tracing::Span::current().context())
    }

    /// Publishes and waits for the server's ack, retrying with backoff. A
    /// PRODUCER span covers it and is the parent the consumer continues.
    pub async fn publish(&self, event: &Event) -> Result<Published, PublishError> {
        let event_type = event.event_type();
        let subject = self.subject_of(event);
        let span = tracing::info_span!(
            target: crate::telemetry::PER_EVENT_SPANS,
            "publish",
            otel.name = %format_args!("publish {}", event_type.as_str()),
            otel.kind = "producer",
            messaging.system = "nats",
            messaging.operation.type = "send",
            messaging.destination.name = %subject,
            messaging.message.id = %event.meta.event_id,
        );
        async {
            let outbound = self.prepare(event)?;
            self.send(outbound).await?.confirm().await
        }
        .instrument(span)
        .await
    }

    /// Sends one prepared event without waiting for its ack; await
    /// [`PendingPublish::confirm`] later. Waits while `max_inflight` acks are
    /// outstanding. Sending many and confirming afterwards is the fast path.
    pub async fn send(&self, outbound: OutboundEvent) -> Result<PendingPublish<'_>, PublishError> {
        let mut attempt = 1;
        loop {
            match self.send_once(&outbound).await {
                Ok(ack) => {
                    return Ok(PendingPublish {
                        publisher: self,
                        outbound,
                        ack,
                        attempt,
                        deadline: tokio::time::Instant::now() + self.settings.ack_timeout,
                    });
                }
                Err(error) => {
                    self.retry_or_fail(&outbound, attempt, error).await?;
                    attempt += 1;
                }
            }
        }
    }

    async fn send_once(
        &self,
        outbound: &OutboundEvent,
    ) -> Result<PublishAckFuture, jetstream::context::PublishError> {
        // The body and subject are shared (reference counts), never copied.
        let message = PublishMessage::build()
            .payload(outbound.body.clone())
            .headers(outbound.headers());
        self.js
            .send_publish(outbound.subject.clone(), message)
            .await
    }

    /// Waits out the backoff before the next attempt, or returns the final error.
    async fn retry_or_fail(
        &self,
        outbound: &OutboundEvent,
        attempt: u32,
        error: jetstream::context::PublishError,
    ) -> Result<(), PublishError> {
        let retryable = !matches!(
            error.kind(),
            PublishErrorKind::MaxPayloadExceeded
                | PublishErrorKind::WrongLastMessageId
                | PublishErrorKind::WrongLastSequence
        );
        if !retryable {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            record_failure(outbound.event_type);
            return Err(PublishError::Refused {
                event_id: outbound.event_id,
                event_type: outbound.event_type,
                subject: outbound.subject.to_string(),
                source: error,
            });
        }
        if attempt >= self.settings.attempts {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            record_failure(outbound.event_type);
            return Err(PublishError::RetriesExhausted {
                event_id: outbound.event_id,
                event_type: outbound.event_type,
                subject: outbound.subject.to_string(),
                attempts: attempt,
                source: error,
            });
        }
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        let delay = backoff(&self.settings, attempt);
        tracing::warn!(
            event_id = %outbound.event_id,
            subject = %outbound.subject,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            error = %error,
            "publish failed, retrying"
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

fn record_failure(event_type: EventType) {
    metrics()
        .events_publish_failed
        .with_label_values(&[event_type.as_str()])
        .inc();
}

/// `initial * 2^(attempt-1)`, capped, with up to 25% jitter so that many
/// publishers that failed together do not retry together.
fn backoff(settings: &PublisherSettings, attempt: u32) -> Duration {
    let exp = settings
        .initial_backoff
        .saturating_mul(1u32 << (attempt - 1).min(16));
    let capped = exp.min(settings.max_backoff);
    let jitter_source = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let jitter = capped.mul_f64(f64::from(jitter_source % 250) / 1000.0);
    capped + jitter
}

/// A sent event whose ack has not been awaited yet.
pub struct PendingPublish<'a> {
    publisher: &'a EventPublisher,
    outbound: OutboundEvent,
    ack: PublishAckFuture,
    attempt: u32,
    /// When the ack is overdue: the ack timeout counted from the send.
    /// async-nats starts its own timer only when the ack future is first
    /// awaited, so acks confirmed one after another would otherwise wait out
    /// their timeouts one after another: after a broker failover lost the
    /// acks of a pipelined batch, N publishes took N ack timeouts to retry
    /// (a batch of 100 took minutes in the cluster fault test).
    deadline: tokio::time::Instant,
}

impl PendingPublish<'_> {
    /// Waits for the ack; on a lost or failed ack, re-sends (same message id)
    /// with backoff until the attempts run out.
    pub async fn confirm(self) -> Result<Published, PublishError> {
        let PendingPublish {
            publisher,
            outbound,
            mut ack,
            mut attempt,
            mut deadline,
        } = self;
        loop {
            let outcome = tokio::time::timeout_at(deadline, ack.into_future())
                .await
                .unwrap_or_else(|_| Err(PublishErrorKind::TimedOut.into()));
            match outcome {
                Ok(stored) => {
                    let (counter, metric) = if stored.duplicate {
                        (&publisher.stats.duplicates, &metrics().events_duplicate)
                    } else {
                        (&publisher.stats.published, &metrics().events_published)
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    metric
                        .with_label_values(&[outbound.event_type.as_str()])
                        .inc();
                    return Ok(Published {
                        event_id: outbound.event_id,
                        stream_sequence: stored.sequence,
                        duplicate: stored.duplicate,
                    });
                }
                Err(error) => {
                    publisher.retry_or_fail(&outbound, attempt, error).await?;
                    attempt += 1;
                    let resent = publisher.send(outbound.clone()).await?;
                    attempt += resent.attempt - 1;
                    ack = resent.ack;
                    deadline = resent.deadline;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let settings = PublisherSettings {
            max_inflight: 1,
            attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ack_timeout: Duration::from_secs(1),
        };
        let first = backoff(&settings, 1);
        assert!(first >= Duration::from_millis(100) && first < Duration::from_millis(125));
        let third = backoff(&settings, 3);
        assert!(third >= Duration::from_millis(400) && third < Duration::from_millis(500));
        let late = backoff(&settings, 30);
        assert!(late >= Duration::from_millis(1000) && late < Duration::from_millis(1250));
    }
}
