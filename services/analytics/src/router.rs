//! The bridge from the shared `ConsumerRunner` to the partition actors: each
//! pull batch of a partition is sent to its actor as one message and awaited,
//! so the actor's
//! bounded mailbox slows the pull loop instead of growing without bound, and
//! the runner acks only after the actor has applied the event. The actor's
//! last applied sequence is where the partition's consumer restarts after
//! deliveries were lost on the way (its exactly-once needs stream order).

use crate::actor::{Apply, ApplyBatch, Inspect, PartitionActor};
use actix::Addr;
use shopmesh_shared::metrics::metrics;
use shopmesh_shared::nats::{Delivery, EventHandler, HandlerError};
use shopmesh_shared::subjects::Partition;
use shopmesh_shared::telemetry::EventSpan;

pub struct PartitionRouter {
    /// Indexed by partition number; `None` for partitions another instance owns.
    actors: Vec<Option<Addr<PartitionActor>>>,
}

impl PartitionRouter {
    pub fn new(actors: Vec<Option<Addr<PartitionActor>>>) -> Self {
        Self { actors }
    }
}

impl PartitionRouter {
    fn actor(&self, partition: Partition) -> Result<&Addr<PartitionActor>, HandlerError> {
        self.actors
            .get(usize::from(partition.index()))
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                HandlerError::Transient(anyhow::anyhow!(
                    "partition {partition} has no actor in this instance"
                ))
            })
    }
}

impl EventHandler for PartitionRouter {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let partition = delivery.partition;
        let addr = self.actor(partition)?;
        // One delivery at a time comes from `handle_batch`'s default, which
        // the router overrides: only tests and tools call this, untraced.
        let parent = EventSpan::none();
        let depth = metrics()
            .actor_mailbox
            .with_label_values(&[&partition.to_string()]);
        depth.inc();
        let sent = addr.send(Apply { delivery, parent }).await;
        depth.dec();
        sent.map_err(|e| {
            HandlerError::Transient(anyhow::anyhow!("partition {partition} actor: {e}"))
        })
    }

    /// The sequence after the partition's last applied one: its state takes
    /// the partition's events in stream order and skips what it has seen.
    /// `None` when the partition is not here or its actor has stopped (the
    /// service is shutting down, the consumer's restart would not matter).
    async fn resume_sequence(&self, partition: Partition) -> Option<u64> {
        let addr = self.actor(partition).ok()?;
        let last = addr
            .send(Inspect(Box::new(|view| view.state.last_sequence)))
            .await
            .ok()?;
        Some(last + 1)
    }

    /// A pull batch in one actor message; each delivery keeps its CONSUMER
    /// span as the parent of its "apply" span.
    async fn handle_batch(
        &self,
        batch: Vec<(Delivery, EventSpan)>,
    ) -> Vec<Result<(), HandlerError>> {
        let Some(partition) = batch.first().map(|(d, _)| d.partition) else {
            return Vec::new();
        };
        let n = batch.len();
        let failed = |error: &dyn std::fmt::Display| {
            (0..n)
                .map(|_| {
                    Err(HandlerError::Transient(anyhow::anyhow!(
                        "partition {partition} actor: {error}"
                    )))
                })
                .collect()
        };
        let addr = match self.actor(partition) {
            Ok(addr) => addr,
            Err(error) => return failed(&error),
        };
        let depth = metrics()
            .actor_mailbox
            .with_label_values(&[&partition.to_string()]);
        depth.add(n as i64);
        let sent = addr.send(ApplyBatch { deliveries: batch }).await;
        depth.sub(n as i64);
        match sent {
            Ok(()) => (0..n).map(|_| Ok(())).collect(),
            Err(error) => failed(&error),
        }
    }
}
