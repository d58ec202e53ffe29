//! The bridge from the shared `ConsumerRunner` to the partition actors: each
//! delivery is sent to its partition's actor and awaited, so the actor's
//! bounded mailbox slows the pull loop instead of growing without bound, and
//! the runner acks only after the actor has applied the event.

use crate::actor::{Apply, PartitionActor};
use actix::Addr;
use shopmesh_shared::metrics::metrics;
use shopmesh_shared::nats::{Delivery, EventHandler, HandlerError};

pub struct PartitionRouter {
    /// Indexed by partition number; `None` for partitions another instance owns.
    actors: Vec<Option<Addr<PartitionActor>>>,
}

impl PartitionRouter {
    pub fn new(actors: Vec<Option<Addr<PartitionActor>>>) -> Self {
        Self { actors }
    }
}

impl EventHandler for PartitionRouter {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let partition = delivery.partition;
        let Some(addr) = self
            .actors
            .get(usize::from(partition.index()))
            .and_then(Option::as_ref)
        else {
            return Err(HandlerError::Transient(anyhow::anyhow!(
                "partition {partition} has no actor in this instance"
            )));
        };
        // The current span is the runner's CONSUMER span: the actor's apply
        // span becomes its child.
        let parent = tracing::Span::current();
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
}
