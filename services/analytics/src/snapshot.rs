//! Snapshots of partition state in the JetStream object store bucket
//! (`shopmesh-analytics`, objects `partition-NNN`), and the reset of a
//! partition's durable consumer to the sequence after its snapshot.
//!
//! Why the reset: the consumer's ack floor moves with every applied event, but
//! the snapshot is older. After a crash, resuming from the ack floor would
//! lose the events between the snapshot and the crash; resuming from the
//! snapshot's `last_sequence + 1` replays exactly those.

use crate::state::PartitionState;
use anyhow::Context as _;
use async_nats::jetstream::{self, object_store};
use serde::Serialize;
use shopmesh_shared::nats::{consumer_name, restart_consumer};
use shopmesh_shared::settings::{ConsumerSettings, StreamSettings};
use shopmesh_shared::subjects::Partition;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The consumer group (durable name prefix, dead-letter subject) of this service.
pub const GROUP: &str = "analytics";

/// Size, time and position of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    pub bytes: usize,
    pub taken_at_ms: i64,
    pub last_sequence: u64,
}

/// An encoded snapshot on its way to the store.
pub struct SnapshotBlob {
    pub info: SnapshotInfo,
    pub bytes: Vec<u8>,
}

pub fn object_name(partition: Partition) -> String {
    format!("partition-{:03}", partition.index())
}

#[derive(Clone)]
pub struct SnapshotStore {
    store: object_store::ObjectStore,
}

impl SnapshotStore {
    /// Opens the bucket, creating it with one replica on first use.
    pub async fn open(js: &jetstream::Context, bucket: &str) -> anyhow::Result<Self> {
        Self::open_replicated(js, bucket, 1).await
    }

    /// Opens the bucket, creating it on first use with `replicas` copies:
    /// the service passes the events stream's `SHOPMESH_STREAM_REPLICAS`, so
    /// that in a cluster the snapshots survive the loss of a server like the
    /// events do (with one copy on the lost server, a restart could load no
    /// snapshot). An existing bucket with fewer copies (created before the
    /// stream's replicas were raised) is raised too; one with more keeps them.
    pub async fn open_replicated(
        js: &jetstream::Context,
        bucket: &str,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        let store = match js.get_object_store(bucket).await {
            Ok(store) => {
                raise_replicas(js, bucket, replicas).await?;
                store
            }
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bucket.to_owned(),
                    description: Some("shopmesh analytics partition snapshots".into()),
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .with_context(|| format!("cannot create object store bucket {bucket}"))?,
        };
        Ok(Self { store })
    }

    /// The partition's last snapshot, or `None` when it has none yet. A
    /// snapshot that exists but does not decode stops the start: replaying
    /// from the beginning could silently miss events the stream no longer has.
    /// Reading it is retried (see [`retrying`]).
    pub async fn load(
        &self,
        partition: Partition,
    ) -> anyhow::Result<Option<(PartitionState, SnapshotInfo)>> {
        let name = object_name(partition);
        let Some((bytes, taken_at_ms)) = retrying(&format!("read snapshot {name}"), async || {
            self.fetch(&name).await
        })
        .await?
        else {
            return Ok(None);
        };
        let state: PartitionState = shopmesh_shared::codec::decode_value(&bytes)
            .with_context(|| format!("snapshot {name} does not decode"))?;
        let info = SnapshotInfo {
            bytes: bytes.len(),
            taken_at_ms,
            last_sequence: state.last_sequence,
        };
        Ok(Some((state, info)))
    }

    /// The object's bytes and modification time (ms), `None` when missing.
    async fn fetch(&self, name: &str) -> anyhow::Result<Option<(Vec<u8>, i64)>> {
        let mut object = match self.store.get(name).await {
            Ok(object) => object,
            Err(error) if error.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(anyhow::anyhow!("cannot read snapshot {name}: {error}")),
        };
        let taken_at_ms = object
            .info()
            .modified
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .unwrap_or_default();
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .with_context(|| format!("cannot read snapshot {name}"))?;
        Ok(Some((bytes, taken_at_ms)))
    }

    pub async fn save(&self, partition: Partition, bytes: &[u8]) -> anyhow::Result<()> {
        let name = object_name(partition);
        let mut reader = bytes;
        self.store
            .put(name.as_str(), &mut reader)
            .await
            .map_err(|e| anyhow::anyhow!("cannot store snapshot {name}: {e}"))?;
        Ok(())
    }

    /// A task uploading the newest snapshot it is handed, one at a time, in
    /// order; it ends after the last one once the sender is dropped.
    pub fn spawn_uploader(
        &self,
        partition: Partition,
    ) -> (watch::Sender<Option<Arc<SnapshotBlob>>>, JoinHandle<()>) {
        let (tx, mut rx) = watch::channel::<Option<Arc<SnapshotBlob>>>(None);
        let store = self.clone();
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let blob = rx.borrow_and_update().clone();
                if let Some(blob) = blob
                    && let Err(error) = store.save(partition, &blob.bytes).await
                {
                    tracing::warn!(%partition, error = format!("{error:#}"), "snapshot upload failed");
                }
            }
        });
        (tx, task)
    }
}

/// Gives the bucket's stream (`OBJ_<bucket>`) at least `replicas` copies;
/// JetStream copies the existing snapshots to the new peers.
async fn raise_replicas(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> anyhow::Result<()> {
    let name = format!("OBJ_{bucket}");
    let mut stream = js
        .get_stream(&name)
        .await
        .with_context(|| format!("cannot read stream {name}"))?;
    let config = &stream
        .info()
        .await
        .with_context(|| format!("cannot read stream {name}"))?
        .config;
    if config.num_replicas >= replicas {
        return Ok(());
    }
    tracing::info!(stream = %name, from = config.num_replicas, to = replicas, "raising snapshot replicas");
    let mut raised = config.clone();
    raised.num_replicas = replicas;
    js.update_stream(raised)
        .await
        .with_context(|| format!("cannot raise stream {name} to {replicas} replicas"))?;
    Ok(())
}

/// Recreates `partition`'s durable consumer so it delivers from
/// `start_sequence` (from the beginning when `None`), with the configuration
/// the shared `ConsumerRunner` uses (it then finds and reuses this consumer).
/// The runner itself restarts it the same way when deliveries were lost.
/// Retried as a whole (see [`retrying`]): a delete whose answer timed out
/// may or may not have happened, and the next attempt deletes again.
pub async fn reset_consumer(
    js: &jetstream::Context,
    streams: &StreamSettings,
    settings: &ConsumerSettings,
    partition: Partition,
    start_sequence: Option<u64>,
) -> anyhow::Result<()> {
    let name = consumer_name(GROUP, partition);
    retrying(&format!("reset consumer {name}"), async || {
        restart_consumer(js, streams, settings, GROUP, partition, start_sequence)
            .await
            .map(drop)
            .map_err(anyhow::Error::from)
    })
    .await
}

/// Attempts at a start-up step against JetStream before giving up.
const START_ATTEMPTS: u32 = 8;

/// Runs `step` until it succeeds, at most [`START_ATTEMPTS`] times with a
/// growing pause (0.25 s doubling to 2 s: about 10 s besides the steps' own
/// timeouts). After a cluster lost a server, JetStream requests time out
/// now and then (in the cluster fault test about one snapshot read or
/// consumer reset in three, minutes after the loss): a start then must wait
/// it out, not exit.
async fn retrying<T>(
    what: &str,
    mut step: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut pause = std::time::Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < START_ATTEMPTS => {
                tracing::warn!(
                    attempt,
                    error = format!("{error:#}"),
                    "{what} failed; retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
                attempt += 1;
            }
            Err(error) => return Err(error.context(format!("{what}: {attempt} attempts failed"))),
        }
    }
}

/// Messages the partition's consumer has yet to deliver or see acknowledged.
pub async fn consumer_lag(
    js: &jetstream::Context,
    streams: &StreamSettings,
    partition: Partition,
) -> Option<u64> {
    let stream = js
        .get_stream(streams.partition_stream(partition))
        .await
        .ok()?;
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer(&consumer_name(GROUP, partition))
        .await
        .ok()?;
    let info = consumer.info().await.ok()?;
    Some(info.num_pending + info.num_ack_pending as u64)
}
