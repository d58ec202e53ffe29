//! The partition actor: the single owner of one partition's [`PartitionState`].
//! It applies deliveries in order (exactly once, by stream sequence), answers
//! reads with closures run against its state, and takes snapshots, which it
//! hands to an uploader task so that applying never waits for the network.

use crate::clock::Clock;
use crate::items::{GroupBuffers, GroupedSink, ItemGraph, ItemSink};
use crate::settings::{AggregateSettings, SnapshotSettings};
use crate::snapshot::{SnapshotBlob, SnapshotInfo};
use crate::state::PartitionState;
use crate::window::{Window, WindowKind};
use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult};
use opentelemetry::KeyValue;
use shopmesh_shared::events::{Category, ProductId};
use shopmesh_shared::nats::Delivery;
use shopmesh_shared::subjects::Partition;
use shopmesh_shared::telemetry::EventSpan;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Latest snapshot handed to the uploader; it only ever uploads the newest.
pub type SnapshotSender = watch::Sender<Option<Arc<SnapshotBlob>>>;

pub struct PartitionActor {
    partition: Partition,
    state: PartitionState,
    config: AggregateSettings,
    clock: Clock,
    mailbox: usize,
    snapshot_every: u64,
    snapshot_interval: Duration,
    since_snapshot: u64,
    uploads: Option<SnapshotSender>,
    last_snapshot: Option<SnapshotInfo>,
    /// Events applied per bucket over the last minute, for events/s.
    rate: Window,
    /// The product-keyed view summed over partitions, kept exact by telling
    /// it every change this partition makes.
    items: Arc<ItemGraph>,
    /// Reused by every event's writes to `items`.
    item_buffers: GroupBuffers,
}

impl PartitionActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        partition: Partition,
        state: PartitionState,
        loaded: Option<SnapshotInfo>,
        config: AggregateSettings,
        snapshots: &SnapshotSettings,
        clock: Clock,
        mailbox: usize,
        uploads: SnapshotSender,
        items: Arc<ItemGraph>,
    ) -> Self {
        Self {
            partition,
            state,
            config,
            clock,
            mailbox,
            snapshot_every: snapshots.every,
            snapshot_interval: snapshots.interval,
            since_snapshot: 0,
            uploads: Some(uploads),
            last_snapshot: loaded,
            rate: Window::default(),
            items,
            item_buffers: GroupBuffers::default(),
        }
    }

    /// Encodes the state here, where it is consistent with `last_sequence`;
    /// the upload happens off the actor.
    fn snapshot(&mut self) {
        let Some(uploads) = &self.uploads else {
            return;
        };
        match shopmesh_shared::codec::encode_value(&self.state) {
            Ok(bytes) => {
                let info = SnapshotInfo {
                    bytes: bytes.len(),
                    taken_at_ms: self.clock.now_ms(),
                    last_sequence: self.state.last_sequence,
                };
                self.last_snapshot = Some(info);
                self.since_snapshot = 0;
                let partition = self.partition.to_string();
                let metrics = shopmesh_shared::metrics::metrics();
                metrics
                    .snapshot_timestamp
                    .with_label_values(&[&partition])
                    .set(info.taken_at_ms / 1000);
                metrics
                    .snapshot_bytes
                    .with_label_values(&[&partition])
                    .set(info.bytes as i64);
                uploads.send_replace(Some(Arc::new(SnapshotBlob { info, bytes })));
            }
            Err(error) => {
                tracing::error!(partition = %self.partition, %error, "cannot encode a snapshot");
            }
        }
    }
}

impl Actor for PartitionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
        let interval = self.snapshot_interval;
        ctx.run_later(snapshot_phase(self.partition, interval), move |_, ctx| {
            ctx.run_interval(interval, |actor, _| {
                if actor.since_snapshot > 0 {
                    actor.snapshot();
                }
            });
        });
    }
}

/// When a partition's timed snapshots start within the first interval: spread
/// by partition index, so that 32 partitions started together do not all
/// encode their whole state at the same moment (`shopmesh bench` saw that
/// burst in the maximum publish -> recommendation latency).
fn snapshot_phase(partition: Partition, interval: Duration) -> Duration {
    const SLOTS: u32 = 32;
    interval / SLOTS * (u32::from(partition.index()) % SLOTS)
}

/// Apply one delivery. `parent` is the consumer's span, so the "apply" span
/// continues the event's trace on the actor's thread.
pub struct Apply {
    pub delivery: Delivery,
    pub parent: EventSpan,
}

impl Message for Apply {
    type Result = ();
}

impl Handler<Apply> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: Apply, _: &mut Self::Context) {
        self.apply_traced(&msg.delivery, &msg.parent);
    }
}

/// Apply several deliveries of this partition, in order, as one message: one
/// mailbox round trip for a whole pull batch. Each delivery comes with the
/// span its "apply" span becomes a child of (the consumer's CONSUMER span;
/// `EventSpan::none()` for untraced replays).
pub struct ApplyBatch {
    pub deliveries: Vec<(Delivery, EventSpan)>,
}

impl Message for ApplyBatch {
    type Result = ();
}

impl Handler<ApplyBatch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: ApplyBatch, _: &mut Self::Context) {
        for (delivery, parent) in &msg.deliveries {
            self.apply_traced(delivery, parent);
        }
    }
}

impl PartitionActor {
    /// Applies one delivery in an "apply" span, child of `parent`.
    fn apply_traced(&mut self, delivery: &Delivery, parent: &EventSpan) {
        let span = parent.child(
            "apply",
            module_path!(),
            [
                KeyValue::new("partition", i64::from(self.partition.index())),
                KeyValue::new("stream_sequence", delivery.stream_sequence as i64),
            ],
        );
        if !self.apply(delivery, &span) {
            tracing::debug!(
                partition = self.partition.index(),
                stream_sequence = delivery.stream_sequence,
                "already applied; skipped"
            );
        }
    }

    /// Applies one delivery, counts it and snapshots when due; false when it
    /// was applied before. The recommender's view update gets a span of its
    /// own, a child of `apply` (the delivery's "apply" span).
    fn apply(&mut self, delivery: &Delivery, apply: &EventSpan) -> bool {
        let mut sink =
            TracedSink::new(GroupedSink::new(&self.items, &mut self.item_buffers), apply);
        let applied = self.state.apply_with(
            delivery.stream_sequence,
            &delivery.event,
            &self.config,
            &mut sink,
        );
        sink.finish();
        if applied {
            self.since_snapshot += 1;
            self.rate
                .record(WindowKind::OneMinute, self.clock.now_ms(), |c| c.views += 1);
            if self.since_snapshot >= self.snapshot_every {
                self.snapshot();
            }
        }
        applied
    }
}

/// The product-keyed view as the recommender's writer, with a
/// "recommender update" span opened at the first change an event makes to
/// it. Events that leave the view alone (logins, searches, ...) create no
/// span; the span records how many changes of each kind the event made.
struct TracedSink<'a> {
    sink: GroupedSink<'a>,
    parent: &'a EventSpan,
    span: Option<EventSpan>,
    cooccurrence: u64,
    touched: u64,
    catalogue: u64,
}

impl<'a> TracedSink<'a> {
    fn new(sink: GroupedSink<'a>, parent: &'a EventSpan) -> Self {
        Self {
            sink,
            parent,
            span: None,
            cooccurrence: 0,
            touched: 0,
            catalogue: 0,
        }
    }

    /// Opened lazily: only events that change the view pay for a span. Its
    /// parent is the event's "apply" span (none when that is none).
    fn open(&mut self) {
        if self.span.is_none() {
            self.span = Some(self.parent.child("recommender update", module_path!(), []));
        }
    }

    /// Applies the buffered co-occurrence changes, records the counts and
    /// closes the span.
    fn finish(self) {
        self.sink.finish();
        if let Some(span) = self.span {
            span.set_attributes([
                KeyValue::new("recommender.cooccurrence_changes", self.cooccurrence as i64),
                KeyValue::new("recommender.touches", self.touched as i64),
                KeyValue::new("recommender.catalogue_changes", self.catalogue as i64),
            ]);
        }
    }
}

impl ItemSink for TracedSink<'_> {
    fn cooccurrence(&mut self, x: ProductId, y: ProductId, delta: i64) {
        self.open();
        self.cooccurrence += 1;
        self.sink.cooccurrence(x, y, delta);
    }

    fn touched(&mut self, product: ProductId, weight: u64) {
        self.open();
        self.touched += 1;
        self.sink.touched(product, weight);
    }

    fn catalogue(
        &mut self,
        product: ProductId,
        name: Option<&str>,
        category: Option<&Category>,
        stock: i64,
    ) {
        self.open();
        self.catalogue += 1;
        self.sink.catalogue(product, name, category, stock);
    }
}

/// What a read sees of a partition.
pub struct PartitionView<'a> {
    pub partition: Partition,
    pub state: &'a PartitionState,
    pub config: &'a AggregateSettings,
    pub now_ms: i64,
    pub events_per_sec: f64,
    pub snapshot: Option<SnapshotInfo>,
}

type ReadFn<R> = Box<dyn FnOnce(&PartitionView<'_>) -> R + Send>;

/// A read run inside the actor, against its current state.
pub struct Inspect<R>(pub ReadFn<R>);

impl<R: 'static> Message for Inspect<R> {
    type Result = R;
}

impl<R: Send + 'static> Handler<Inspect<R>> for PartitionActor {
    type Result = MessageResult<Inspect<R>>;

    fn handle(&mut self, msg: Inspect<R>, _: &mut Self::Context) -> Self::Result {
        let now_ms = self.clock.now_ms();
        let view = PartitionView {
            partition: self.partition,
            state: &self.state,
            config: &self.config,
            now_ms,
            events_per_sec: self.rate.sum(WindowKind::OneMinute, now_ms).views as f64 / 60.0,
            snapshot: self.last_snapshot,
        };
        MessageResult((msg.0)(&view))
    }
}

/// Final snapshot at shutdown: takes one when anything changed since the last,
/// then closes the uploads so the uploader finishes and ends.
pub struct Flush;

impl Message for Flush {
    type Result = ();
}

impl Handler<Flush> for PartitionActor {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Self::Context) {
        if self.since_snapshot > 0 || self.last_snapshot.is_none() {
            self.snapshot();
        }
        self.uploads = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopmesh_shared::subjects::PartitionCount;

    #[test]
    fn timed_snapshots_of_32_partitions_start_at_32_different_moments_within_one_interval() {
        let interval = Duration::from_secs(30);
        let count = PartitionCount::new(32).unwrap();
        let mut phases: Vec<Duration> = count.all().map(|p| snapshot_phase(p, interval)).collect();
        assert_eq!(phases[0], Duration::ZERO);
        assert!(phases.iter().all(|&phase| phase < interval));
        phases.sort();
        phases.dedup();
        assert_eq!(phases.len(), 32);
    }
}
