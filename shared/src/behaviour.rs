//! Behaviour events (views, searches, cart changes, logins): many, cheap, and
//! never allowed to slow or fail a request. [`BehaviourPublisher::emit`] puts
//! the event in a bounded buffer and returns at once; a background task
//! publishes from it. A full buffer or a NATS outage drops the event and
//! counts it: the trade-off is written down in the README.

use crate::events::Event;
use crate::nats::EventPublisher;
use crate::nats::headers::TraceHeaders;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Counters of the behaviour path.
#[derive(Debug, Default)]
pub struct BehaviourStats {
    pub published: AtomicU64,
    /// Dropped because the buffer was full.
    pub dropped_full: AtomicU64,
    /// Dropped because publishing failed after its retries.
    pub dropped_failed: AtomicU64,
}

impl BehaviourStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_full.load(Ordering::Relaxed) + self.dropped_failed.load(Ordering::Relaxed)
    }
}

/// Unacknowledged behaviour publishes at once, per service.
const IN_FLIGHT: usize = 256;

/// The sending side; cheap to clone into handlers.
#[derive(Clone)]
pub struct BehaviourPublisher {
    tx: mpsc::Sender<(Event, TraceHeaders)>,
    stats: Arc<BehaviourStats>,
}

impl BehaviourPublisher {
    /// Starts the background publisher with a buffer of `capacity` events. The
    /// task ends, after publishing what is buffered, once every clone of the
    /// returned publisher is dropped.
    pub fn spawn(publisher: EventPublisher, capacity: usize) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(BehaviourStats::default());
        let task = tokio::spawn(publish_loop(publisher, rx, stats.clone()));
        (Self { tx, stats }, task)
    }

    pub fn stats(&self) -> Arc<BehaviourStats> {
        self.stats.clone()
    }

    /// Queues `event` under the current span's trace; never waits.
    pub fn emit(&self, event: Event) {
        let trace = TraceHeaders::current();
        if self.tx.try_send((event, trace)).is_err() {
            self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
            record_drop("buffer_full", 1);
        }
    }
}

async fn publish_loop(
    publisher: EventPublisher,
    mut rx: mpsc::Receiver<(Event, TraceHeaders)>,
    stats: Arc<BehaviourStats>,
) {
    let mut confirming = FuturesUnordered::new();
    loop {
        tokio::select! {
            next = rx.recv(), if confirming.len() < IN_FLIGHT => {
                let Some((event, trace)) = next else { break };
                let outbound = match publisher.prepare_with_trace(&event, trace) {
                    Ok(outbound) => outbound,
                    Err(error) => {
                        tracing::warn!(%error, "behaviour event not encodable; dropped");
                        stats.dropped_failed.fetch_add(1, Ordering::Relaxed);
                        record_drop("publish_failed", 1);
                        continue;
                    }
                };
                match publisher.send(outbound).await {
                    Ok(pending) => confirming.push(pending.confirm()),
                    Err(error) => {
                        tracing::warn!(%error, "behaviour event dropped");
                        stats.dropped_failed.fetch_add(1, Ordering::Relaxed);
                        record_drop("publish_failed", 1);
                    }
                }
            }
            Some(result) = confirming.next(), if !confirming.is_empty() => {
                count(&stats, result);
            }
        }
    }
    // Senders are gone: confirm what is in flight, briefly; what is still
    // unconfirmed after that is counted as dropped, never silently lost.
    let rest = async {
        while let Some(result) = confirming.next().await {
            count(&stats, result);
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), &mut Box::pin(rest))
        .await
        .is_err()
    {
        stats
            .dropped_failed
            .fetch_add(confirming.len() as u64, Ordering::Relaxed);
    }
}

fn count(
    stats: &BehaviourStats,
    result: Result<crate::nats::Published, crate::nats::PublishError>,
) {
    match result {
        Ok(_) => stats.published.fetch_add(1, Ordering::Relaxed),
        Err(error) => {
            tracing::warn!(%error, "behaviour event dropped");
            record_drop("publish_failed", 1);
            stats.dropped_failed.fetch_add(1, Ordering::Relaxed)
        }
    };
}

fn record_drop(reason: &str, count: u64) {
    crate::metrics::metrics()
        .behaviour_dropped
        .with_label_values(&[reason])
        .inc_by(count);
}
