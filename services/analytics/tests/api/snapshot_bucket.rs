//! The snapshot bucket's replicas follow `SHOPMESH_STREAM_REPLICAS`, also
//! for a bucket created earlier with fewer (a platform whose streams were
//! raised from 1 to 3 copies would otherwise keep its snapshots on one
//! server only, and lose them with it).

use async_nats::jetstream::{self, object_store};
use shopmesh_analytics::snapshot::SnapshotStore;
use shopmesh_shared::testkit::{NatsCluster, eventually};
use std::time::Duration;

async fn replicas(js: &jetstream::Context, bucket: &str) -> usize {
    js.get_stream(format!("OBJ_{bucket}"))
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .config
        .num_replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_bucket_is_raised_to_the_replicas_asked_and_never_lowered() {
    let cluster = NatsCluster::start(3);
    let servers: Vec<async_nats::ServerAddr> = cluster
        .nodes
        .iter()
        .map(|node| node.url().parse().unwrap())
        .collect();
    let client = async_nats::connect(servers.as_slice()).await.unwrap();
    let js = jetstream::new(client);
    // The nodes are up; JetStream needs its meta leader first, and every
    // node's peer known to it before it can place three copies (a busy
    // machine once raised the bucket before: "no suitable peers").
    eventually(
        Duration::from_secs(60),
        "the cluster's JetStream places a three-copy stream",
        async || {
            js.create_stream(jetstream::stream::Config {
                name: "PLACEMENT_PROBE".into(),
                subjects: vec!["placement.probe".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await
            .is_ok()
        },
    )
    .await;
    js.delete_stream("PLACEMENT_PROBE").await.unwrap();
    js.create_object_store(object_store::Config {
        bucket: "snapshots".into(),
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(replicas(&js, "snapshots").await, 1);

    SnapshotStore::open_replicated(&js, "snapshots", 3)
        .await
        .unwrap();
    assert_eq!(replicas(&js, "snapshots").await, 3);

    // Asking for fewer later (another instance's settings) keeps three.
    SnapshotStore::open_replicated(&js, "snapshots", 1)
        .await
        .unwrap();
    assert_eq!(replicas(&js, "snapshots").await, 3);
}
