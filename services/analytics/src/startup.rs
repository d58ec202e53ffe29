//! Building and running the service: connect NATS, open the snapshot bucket,
//! start one actor per owned partition on the arbiters (each loaded from its
//! snapshot, its consumer reset to the snapshot's position), then the
//! consumer runner and the HTTP server. Shutdown goes the other way.
//!
//! Must run inside an actix `System` whose runtime is tokio's multi-thread
//! one (`System::with_tokio_rt`): arbiters need a system, and the pull loops
//! and uploads run on the tokio pool.

use crate::actor::{Flush, PartitionActor};
use crate::clock::Clock;
use crate::gather::Partitions;
use crate::items::ItemGraph;
use crate::router::PartitionRouter;
use crate::settings::Settings;
use crate::snapshot::{self, GROUP, SnapshotInfo, SnapshotStore};
use crate::state::PartitionState;
use crate::{NAME, routes};
use actix::{Actor, Addr, Arbiter};
use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use futures::{StreamExt, TryStreamExt};
use shopmesh_shared::http::ReadinessCheck;
use shopmesh_shared::nats::{
    BackboneError, ConsumerRunner, connect, jetstream_context, provision_streams,
};
use shopmesh_shared::rpc::RpcServer;
use shopmesh_shared::service::{bind, http_server};
use shopmesh_shared::subjects::Partition;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for the last snapshots to be stored.
const UPLOAD_DRAIN: Duration = Duration::from_secs(10);

/// Partitions loaded at once at start-up.
const PARALLEL_LOADS: usize = 8;

/// A partition's last snapshot (or an empty state), with its durable
/// consumer reset to deliver what follows the snapshot.
async fn load_partition(
    js: &async_nats::jetstream::Context,
    store: &SnapshotStore,
    settings: &Settings,
    partition: Partition,
) -> anyhow::Result<(Partition, PartitionState, Option<SnapshotInfo>)> {
    let (mut state, loaded) = match store.load(partition).await? {
        Some((state, info)) => (state, Some(info)),
        None => (Default::default(), None),
    };
    let stream = settings.backbone.streams.partition_stream(partition);
    let held = js.get_stream(&stream).await?.get_info().await?.state;
    let start = start_sequence(
        partition,
        loaded.map(|info| info.last_sequence),
        held.first_sequence,
        held.last_sequence,
    );
    if start.is_none() {
        // From the stream's start: sequences the state saw (of a stream that
        // is gone) must not mark this stream's first events as applied.
        state.last_sequence = 0;
    }
    snapshot::reset_consumer(
        js,
        &settings.backbone.streams,
        &settings.backbone.consumer,
        partition,
        start,
    )
    .await?;
    tracing::info!(%partition, %stream, from_sequence = start.unwrap_or(1), "partition loaded");
    Ok((partition, state, loaded))
}

/// Where a partition's consumer starts: after the snapshot's last event
/// (`snapshot_last`), or from the stream's start without a snapshot.
///
/// A snapshot ahead of the stream (`snapshot_last` past `stream_last`)
/// counted events of another stream: the partition's stream was deleted
/// and made again, or the events moved from the single stream of earlier
/// versions to a stream per partition. Waiting for the new stream to reach
/// that sequence would silently skip its first events, so the state is kept
/// and the stream is read from its start.
fn start_sequence(
    partition: Partition,
    snapshot_last: Option<u64>,
    stream_first: u64,
    stream_last: u64,
) -> Option<u64> {
    let snapshot_last = snapshot_last?;
    if snapshot_last > stream_last {
        tracing::warn!(
            %partition,
            snapshot_last,
            stream_last,
            "the snapshot is ahead of the partition's stream, which must be a new one; \
             keeping the snapshot's figures and reading the stream from its start"
        );
        return None;
    }
    let start = snapshot_last + 1;
    if start < stream_first {
        tracing::warn!(
            %partition,
            from_sequence = start,
            stream_first,
            "the stream no longer holds every event after this partition's snapshot; \
             its figures miss the ones retention dropped"
        );
    }
    Some(start)
}

pub struct Application {
    port: u16,
    server: Server,
    client: async_nats::Client,
    runner: JoinHandle<Result<(), BackboneError>>,
    stop_runner: CancellationToken,
    actors: Vec<Addr<PartitionActor>>,
    rpc: RpcServer,
    uploaders: Vec<JoinHandle<()>>,
    arbiters: Vec<Arbiter>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let client = connect(&settings.backbone.nats, NAME).await?;
        let js = jetstream_context(client.clone(), &settings.backbone.publisher);
        provision_streams(&js, &settings.backbone.streams).await?;
        let store = SnapshotStore::open_replicated(
            &js,
            &settings.snapshots.bucket,
            settings.backbone.streams.replicas,
        )
        .await?;
        let clock = Clock::system();
        let arbiters: Vec<Arbiter> = (0..settings.arbiters).map(|_| Arbiter::new()).collect();

        let owned = settings.owned_partitions();
        let count = usize::from(settings.backbone.streams.partitions.get());
        let mut by_index: Vec<Option<Addr<PartitionActor>>> = vec![None; count];
        let mut actors = Vec::with_capacity(owned.len());
        let mut uploaders = Vec::with_capacity(owned.len());
        // Partitions load concurrently: each is a few JetStream round trips
        // (snapshot read, consumer reset), slow in a cluster and slower still
        // while it has lost a server (timeouts, then retries); one after the
        // other, 32 partitions took minutes to start there.
        let loaded_states: Vec<_> = futures::stream::iter(owned.iter().copied())
            .map(|partition| load_partition(&js, &store, &settings, partition))
            .buffered(PARALLEL_LOADS)
            .try_collect()
            .await?;
        // The product-keyed view is derived: rebuilt from the states just
        // loaded, then kept up to date by the actors.
        let items = Arc::new(ItemGraph::from_states(
            loaded_states.iter().map(|(_, state, _)| state),
        ));
        for (n, (partition, state, loaded)) in loaded_states.into_iter().enumerate() {
            let (uploads, uploader) = store.spawn_uploader(partition);
            uploaders.push(uploader);
            let actor = PartitionActor::new(
                partition,
                state,
                loaded,
                settings.aggregates,
                &settings.snapshots,
                clock,
                settings.mailbox,
                uploads,
                items.clone(),
            );
            let arbiter = &arbiters[n % arbiters.len()];
            let addr = PartitionActor::start_in_arbiter(&arbiter.handle(), move |_| actor);
            by_index[usize::from(partition.index())] = Some(addr.clone());
            actors.push((partition, addr));
        }

        let owned_indexes = owned.iter().map(|p| p.index()).collect();
        let runner = ConsumerRunner::new(
            js.clone(),
            GROUP,
            owned,
            &settings.backbone.streams,
            &settings.backbone.consumer,
            Arc::new(PartitionRouter::new(by_index)),
        );
        let partitions = Partitions::new(actors.clone(), &settings, js, runner.stats(), items);
        let rpc = crate::rpc::start(
            &client,
            partitions.clone(),
            settings.instance_index,
            settings.instance_count,
            owned_indexes,
        )
        .await?;
        let stop_runner = CancellationToken::new();
        let stop = stop_runner.clone();
        let runner = tokio::spawn(async move {
            let outcome = runner.run(stop).await;
            // Logged now, not at shutdown: the service would otherwise serve
            // ever older figures without a word.
            if let Err(error) = &outcome {
                tracing::error!(error = %format!("{error:#}"), "consumer runner stopped");
            }
            outcome
        });

        let listener = bind(&settings.http)?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(partitions);
        let server = http_server(
            listener,
            &settings.http,
            vec![ReadinessCheck::nats(client.clone())],
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone());
                routes::configure(cfg);
            },
        )?;
        Ok(Application {
            port,
            server,
            client,
            runner,
            stop_runner,
            rpc,
            actors: actors.into_iter().map(|(_, addr)| addr).collect(),
            uploaders,
            arbiters,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM or the handle stops the server, then stops
    /// the NATS endpoints, stops consuming (the runner finishes what it holds), snapshots every
    /// partition, waits for the uploads and stops the actors.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.rpc.stop().await;
        self.stop_runner.cancel();
        match self.runner.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(error = %format!("{error:#}"), "consumer runner failed")
            }
            Err(error) => tracing::error!(%error, "consumer runner panicked"),
        }
        for addr in &self.actors {
            if let Err(error) = addr.send(Flush).await {
                tracing::warn!(%error, "partition actor gone before its final snapshot");
            }
        }
        drop(self.actors);
        let uploads = futures::future::join_all(self.uploaders);
        if tokio::time::timeout(UPLOAD_DRAIN, uploads).await.is_err() {
            tracing::warn!("final snapshots not all stored within {UPLOAD_DRAIN:?}");
        }
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
        tracing::info!("analytics service stopped");
        served?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::start_sequence;
    use shopmesh_shared::subjects::{Partition, PartitionCount};

    #[test]
    fn a_consumer_starts_after_its_snapshot_or_at_a_new_streams_start() {
        let p = Partition::new(3, PartitionCount::default()).unwrap();
        // No snapshot: from the start of whatever the stream holds.
        assert_eq!(start_sequence(p, None, 1, 0), None);
        // After the snapshot's last event, also when retention dropped some.
        assert_eq!(start_sequence(p, Some(40), 1, 90), Some(41));
        assert_eq!(start_sequence(p, Some(40), 60, 90), Some(41));
        assert_eq!(start_sequence(p, Some(90), 1, 90), Some(91));
        // A snapshot of another stream (ahead of this one): from its start.
        assert_eq!(start_sequence(p, Some(91), 1, 90), None);
        assert_eq!(start_sequence(p, Some(5_000), 0, 0), None);
    }
}
