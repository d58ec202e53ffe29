//! Durability: snapshots in the object store, a graceful restart that resumes
//! from them, and the crash test (kill -9 of the real binary while events
//! flow) whose final answers must equal a recomputation exactly.

use crate::helpers::*;
use async_nats::jetstream;
use shopmesh_analytics::eval::local::LocalShards;
use shopmesh_analytics::items::ItemGraph;
use shopmesh_analytics::recommend::{self, RecommenderSettings};
use shopmesh_analytics::routes::funnel::Funnel;
use shopmesh_analytics::routes::products::ProductStats;
use shopmesh_analytics::routes::recommendations::{SimilarProducts, UserRecommendations};
use shopmesh_analytics::run_system;
use shopmesh_analytics::settings::AggregateSettings;
use shopmesh_analytics::snapshot::SnapshotStore;
use shopmesh_analytics::state::UserProfile;
use shopmesh_analytics::testkit::assert_same_items;
use shopmesh_shared::events::Timestamp;
use shopmesh_shared::subjects::{Partition, partition_for};

use shopmesh_shared::testkit::{TestBackbone, eventually, viewed_by};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[test]
fn a_graceful_restart_resumes_from_the_snapshots_without_double_counting() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let mut generator = SyntheticShop::new(11, 15, 8);
        let mut events = generator.catalogue();
        events.extend((0..600).map(|_| generator.event()));
        let (first, second) = events.split_at(300);

        let app = spawn_app(&backbone, &[]).await;
        publish_all(&backbone, first).await;
        wait_caught_up(&[&app]).await;
        app.stop().await;

        assert_final_snapshots(&backbone.js).await;
        let loaded = SnapshotStore::open(&backbone.js, "shopmesh-analytics")
            .await
            .unwrap()
            .load(Partition::new(0, partition_count()).unwrap())
            .await
            .unwrap();
        assert!(loaded.is_some());

        // Published while it was down, and after it is back.
        publish_all(&backbone, &second[..150]).await;
        let app = spawn_app(&backbone, &[]).await;
        publish_all(&backbone, &second[150..]).await;
        wait_caught_up(&[&app]).await;
        let stats = app.stats().await;
        for p in stats["partitions"].as_array().unwrap() {
            if p["applied"].as_u64().unwrap() > 0 {
                assert!(p["snapshot"]["bytes"].as_u64().unwrap() > 0);
            }
        }
        assert_matches_recomputation(&app.address, &backbone.js, &generator).await;
        app.stop().await;
    });
}

/// Compares every user profile, product's all-time and 24 h figures and the
/// funnel served at `address` with a recomputation over the whole stream.
async fn assert_matches_recomputation(
    address: &str,
    js: &jetstream::Context,
    generator: &SyntheticShop,
) {
    let client = reqwest::Client::new();
    let get = async |path: String| -> reqwest::Response {
        client.get(format!("{address}{path}")).send().await.unwrap()
    };
    let messages = read_stream(js).await;
    let states = recompute(&messages, &AggregateSettings::default());
    for user in &generator.users {
        let partition = partition_for(Some(user), partition_count()).index();
        let expected = states
            .get(&partition)
            .and_then(|s| s.user_profile(*user, AggregateSettings::default().affinity_half_life));
        let response = get(format!("/users/{user}/profile")).await;
        match expected {
            Some(expected) => {
                assert_eq!(response.status(), 200);
                assert_profile_eq(&response.json::<UserProfile>().await.unwrap(), &expected);
            }
            None => assert_eq!(response.status(), 404),
        }
    }
    for (product, _) in &generator.products {
        let expected = expected_product(&states, *product, Timestamp::now().as_millis()).unwrap();
        let stats: ProductStats = get(format!("/products/{product}/stats"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stats.figures.all_time, expected.all_time, "{product}");
        assert_eq!(stats.figures.last_24h, expected.last_24h, "{product}");
    }
    // Recommendations read the product-keyed view the actors keep and the
    // restart rebuilt: they equal the same pipeline over the recomputation.
    let items = ItemGraph::from_states(states.values());
    let shards = LocalShards {
        states: states.values().collect(),
        items: &items,
        settings: RecommenderSettings::default(),
        now_ms: Timestamp::now().as_millis(),
    };
    for (product, _) in &generator.products {
        let expected = recommend::similar(&shards, *product, 5, &shards.settings)
            .await
            .unwrap();
        let got: SimilarProducts = get(format!("/products/{product}/similar?k=5"))
            .await
            .json()
            .await
            .unwrap();
        assert_same_items(&got.items, &expected, &format!("similar to {product}"));
    }
    for user in &generator.users {
        let request = recommend::pipeline::Request {
            k: 5,
            require_catalogue: true,
            ..Default::default()
        };
        let expected = recommend::recommend(&shards, *user, request, &shards.settings)
            .await
            .unwrap();
        let got: UserRecommendations = get(format!("/recommendations/{user}?k=5"))
            .await
            .json()
            .await
            .unwrap();
        assert_same_items(
            &got.items,
            &expected,
            &format!("recommendations for {user}"),
        );
    }
    let funnel: Funnel = get("/funnel".into()).await.json().await.unwrap();
    let expected = expected_funnel(&states);
    assert_eq!(
        (
            funnel.overall.viewers,
            funnel.overall.carters,
            funnel.overall.buyers
        ),
        (
            expected.overall.viewers,
            expected.overall.carters,
            expected.overall.buyers
        )
    );
}

/// The bucket holds a snapshot of every partition that got events, each
/// equal to a recomputation over the whole stream: the final snapshots of
/// a graceful stop.
async fn assert_final_snapshots(js: &jetstream::Context) {
    let states = recompute(&read_stream(js).await, &AggregateSettings::default());
    assert!(!states.is_empty());
    let store = js.get_object_store("shopmesh-analytics").await.unwrap();
    for (&partition, expected) in &states {
        let mut object = store
            .get(format!("partition-{partition:03}"))
            .await
            .unwrap_or_else(|e| panic!("no snapshot of partition {partition}: {e}"));
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.unwrap();
        let state: shopmesh_analytics::state::PartitionState =
            shopmesh_shared::codec::decode_value(&bytes).unwrap();
        assert_eq!(&state, expected, "partition {partition}");
    }
}

/// SIGTERM, as Kubernetes, `docker stop` and `shopmesh up` send it: the
/// binary drains and snapshots every partition before it exits. (actix's
/// server used to stop the whole actor system on a signal, so the
/// partition actors were gone before their final snapshot.)
#[test]
fn sigterm_stops_the_binary_after_a_final_snapshot_of_every_partition() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let mut generator = SyntheticShop::new(5, 12, 6);
        let mut events = generator.catalogue();
        events.extend((0..300).map(|_| generator.event()));
        let client = reqwest::Client::new();
        // No snapshot before the stop but the one a partition takes when
        // it starts empty: what the bucket holds afterwards is the final one.
        let (mut child, address) = serving_binary(
            &backbone,
            &client,
            &[
                ("SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL", "1h"),
                ("SHOPMESH_ANALYTICS_SNAPSHOT_EVERY", "1000000"),
            ],
        )
        .await;
        publish_all(&backbone, &events).await;
        eventually(Duration::from_secs(60), "every event applied", async || {
            applied_total(&client, &address).await == Some(events.len() as u64)
        })
        .await;
        let status = child.terminate();
        assert!(status.success(), "the binary exits cleanly: {status}");
        assert_final_snapshots(&backbone.js).await;
    })
}

/// The real binary on a free port (see `start_binary`), once it answers;
/// and its address.
async fn serving_binary(
    backbone: &TestBackbone,
    client: &reqwest::Client,
    more: &[(&str, &str)],
) -> (Binary, String) {
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let child = start_binary(backbone, port, more);
    eventually(Duration::from_secs(30), "the binary serves", async || {
        applied_total(client, &address).await.is_some()
    })
    .await;
    (child, address)
}

async fn applied_total(client: &reqwest::Client, address: &str) -> Option<u64> {
    let stats: serde_json::Value = client
        .get(format!("{address}/stats"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        stats["partitions"]
            .as_array()?
            .iter()
            .filter_map(|p| p["applied"].as_u64())
            .sum(),
    )
}

#[test]
fn the_crash_test_kill_9_while_events_flow_loses_and_doubles_nothing() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let mut generator = SyntheticShop::new(23, 40, 16);
        let mut events = generator.catalogue();
        events.extend((0..12_000).map(|_| generator.event()));
        let client = reqwest::Client::new();
        let (mut child, address) = serving_binary(&backbone, &client, &[]).await;

        // Publish continuously from another task while the binary consumes.
        // The last quarter waits for the kill, so that events are still
        // being published when it comes however slowly the binary consumes
        // on a busy machine (it once applied 1 500 events only after all
        // 12 000 were out).
        let publisher_events = events.clone();
        let publisher = publisher(&backbone);
        let (killed_tx, killed_rx) = tokio::sync::oneshot::channel::<()>();
        let hold_at = publisher_events.len() * 3 / 4;
        let publishing = tokio::spawn(async move {
            let mut killed = Some(killed_rx);
            for (n, chunk) in publisher_events.chunks(50).enumerate() {
                if n * 50 >= hold_at
                    && let Some(killed) = killed.take()
                {
                    let _ = killed.await;
                }
                let mut pending = Vec::new();
                for event in chunk {
                    let outbound = publisher.prepare(event).unwrap();
                    pending.push(publisher.send(outbound).await.unwrap());
                }
                for p in pending {
                    p.confirm().await.unwrap();
                }
            }
        });

        // Kill -9 once a good part is applied, with events still flowing.
        eventually(Duration::from_secs(60), "some events applied", async || {
            applied_total(&client, &address).await.unwrap_or(0) >= 1500
        })
        .await;
        child.kill_9();
        killed_tx.send(()).unwrap();

        let (_child, address) = serving_binary(&backbone, &client, &[]).await;
        publishing.await.unwrap();

        eventually(
            Duration::from_secs(120),
            "the restarted binary caught up",
            async || {
                let stats: serde_json::Value =
                    match client.get(format!("{address}/stats")).send().await {
                        Ok(r) => r.json().await.unwrap_or_default(),
                        Err(_) => return false,
                    };
                caught_up(&stats)
            },
        )
        .await;
        assert_matches_recomputation(&address, &backbone.js, &generator).await;

        // Per partition, the restarted process resumed from its snapshot: its
        // last applied sequence is the last sequence of the partition.
        let messages = read_stream(&backbone.js).await;
        let mut last: BTreeMap<u16, u64> = BTreeMap::new();
        for (sequence, partition, _) in &messages {
            last.insert(*partition, *sequence);
        }
        let stats: serde_json::Value = client
            .get(format!("{address}/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for p in stats["partitions"].as_array().unwrap() {
            let partition = p["partition"].as_u64().unwrap() as u16;
            assert_eq!(
                p["last_sequence"].as_u64().unwrap(),
                last.get(&partition).copied().unwrap_or(0)
            );
        }
    });
}

/// A partition's stream made anew (deleted by an operator, or the move from
/// the single stream of earlier versions) restarts its sequences below the
/// snapshot's: the app keeps the snapshot's figures and reads the new
/// stream from its start instead of waiting for it to pass the old number.
#[test]
fn a_snapshot_ahead_of_a_new_stream_keeps_its_figures_and_reads_the_stream_from_its_start() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let user = shopmesh_shared::events::UserId::new_v7();
        let partition = partition_for(Some(&user), partition_count());
        let app = spawn_app(&backbone, &[]).await;
        let before: Vec<_> = (0..5).map(|_| viewed_by(user)).collect();
        publish_all(&backbone, &before).await;
        wait_caught_up(&[&app]).await;
        app.stop().await;

        let stream = format!("SHOPMESH_EVENTS_{partition}");
        backbone.js.delete_stream(&stream).await.unwrap();
        shopmesh_shared::nats::provision_streams(&backbone.js, &backbone.settings.streams)
            .await
            .unwrap();
        publish_all(&backbone, &[viewed_by(user), viewed_by(user)]).await;

        let app = spawn_app(&backbone, &[]).await;
        let path = format!("/users/{user}/profile");
        eventually(
            Duration::from_secs(20),
            "the new stream's views applied",
            async || app.get_json::<UserProfile>(&path).await.counts["product.viewed"] == 7,
        )
        .await;
        app.stop().await;
    });
}
