//! The analytics service's answers against a recomputation: every event of
//! the stream applied in stream order, one partition at a time, on one
//! thread, through the service's own `PartitionState::apply` (as the
//! in-process crash test in services/analytics does). Whatever the crash,
//! restart or broker failure, the served answers must equal it exactly.

use super::stream::Stored;
use shopmesh_analytics::eval::local::LocalShards;
use shopmesh_analytics::gather::merge_products;
use shopmesh_analytics::items::ItemGraph;
use shopmesh_analytics::recommend::{self, RecommenderSettings};
use shopmesh_analytics::routes::funnel::Funnel;
use shopmesh_analytics::routes::products::ProductStats;
use shopmesh_analytics::routes::recommendations::{SimilarProducts, UserRecommendations};
use shopmesh_analytics::settings::AggregateSettings;
use shopmesh_analytics::state::{FunnelFigures, PartitionState, UserProfile};
use shopmesh_analytics::testkit::{self, assert_profile_eq, assert_same_items};
use shopmesh_shared::events::{EventPayload, Timestamp};
use shopmesh_shared::subjects::{PartitionCount, partition_for};
use shopmesh_shared::testkit::eventually;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Every partition's state after applying the whole stream in order.
pub fn recompute(messages: &[Stored]) -> BTreeMap<u16, PartitionState> {
    testkit::recompute(
        messages
            .iter()
            .filter_map(|stored| Some((stored.sequence, stored.partition, stored.event.as_ref()?))),
        &AggregateSettings::default(),
    )
}

/// `GET {address}/stats`, when it answers.
pub async fn stats(http: &reqwest::Client, address: &str) -> Option<serde_json::Value> {
    http.get(format!("{address}/stats"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Events applied over all partitions, when the service answers.
pub async fn applied_total(http: &reqwest::Client, address: &str) -> Option<u64> {
    let stats = stats(http, address).await?;
    Some(
        stats["partitions"]
            .as_array()?
            .iter()
            .filter_map(|p| p["applied"].as_u64())
            .sum(),
    )
}

/// Waits until the service at `address` has applied and acknowledged every
/// message the stream holds: no lag anywhere and, per partition, the last
/// applied sequence equal to the partition's last in `messages`.
pub async fn wait_drained(
    http: &reqwest::Client,
    address: &str,
    messages: &[Stored],
    within: Duration,
) {
    let mut last: BTreeMap<u16, u64> = BTreeMap::new();
    for stored in messages {
        last.insert(stored.partition, stored.sequence);
    }
    eventually(
        within,
        &format!("analytics at {address} applied the whole stream"),
        async || {
            let Some(stats) = stats(http, address).await else {
                return false;
            };
            stats["partitions"].as_array().is_some_and(|partitions| {
                partitions.iter().all(|p| {
                    let partition = p["partition"].as_u64().unwrap_or(u64::MAX) as u16;
                    p["lag"].as_u64() == Some(0)
                        && p["last_sequence"].as_u64()
                            == Some(last.get(&partition).copied().unwrap_or(0))
                })
            })
        },
    )
    .await;
}

/// Asserts that every aggregate the service at `address` serves equals the
/// recomputation over `messages`: per partition the applied count and last
/// sequence (`/stats`), every user's profile, every product's all-time and
/// 24 h figures, the funnel overall and per category, and the
/// recommendations and similar products built on them. Returns how many
/// events were compared.
pub async fn assert_matches_recomputation(
    http: &reqwest::Client,
    address: &str,
    messages: &[Stored],
    partitions: PartitionCount,
) -> u64 {
    let states = recompute(messages);
    let get = async |path: String| -> reqwest::Response {
        http.get(format!("{address}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };

    let stats = stats(http, address).await.expect("/stats answers");
    let served = stats["partitions"].as_array().expect("partitions");
    assert_eq!(served.len(), usize::from(partitions.get()));
    let mut applied = 0;
    for p in served {
        let partition = p["partition"].as_u64().unwrap() as u16;
        let expected = states.get(&partition).cloned().unwrap_or_default();
        assert_eq!(
            (
                p["applied"].as_u64().unwrap(),
                p["last_sequence"].as_u64().unwrap()
            ),
            (expected.applied, expected.last_sequence),
            "partition {partition}: (applied, last sequence) served vs recomputed"
        );
        applied += expected.applied;
    }
    let decoded = messages.iter().filter(|m| m.event.is_some()).count() as u64;
    assert_eq!(applied, decoded, "every event of the stream applied once");

    let mut users = BTreeSet::new();
    let mut products = BTreeSet::new();
    for stored in messages {
        let Some(event) = &stored.event else { continue };
        users.extend(event.meta.user_id);
        if let EventPayload::ProductCreated(p) = &event.payload {
            products.insert(p.product_id);
        }
    }
    let half_life = AggregateSettings::default().affinity_half_life;
    for user in &users {
        let partition = partition_for(Some(user), partitions).index();
        let expected = states
            .get(&partition)
            .and_then(|s| s.user_profile(*user, half_life));
        let response = get(format!("/users/{user}/profile")).await;
        match expected {
            Some(expected) => {
                assert_eq!(response.status(), 200, "profile of {user}");
                assert_profile_eq(&response.json::<UserProfile>().await.unwrap(), &expected);
            }
            None => assert_eq!(response.status(), 404, "profile of {user}"),
        }
    }
    let now_ms = Timestamp::now().as_millis();
    for product in &products {
        let expected = merge_products(
            states
                .values()
                .filter_map(|s| s.product_figures(*product, now_ms)),
        )
        .expect("a created product has figures");
        let served: ProductStats = get(format!("/products/{product}/stats"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(served.figures.all_time, expected.all_time, "{product}");
        assert_eq!(served.figures.last_24h, expected.last_24h, "{product}");
    }

    let mut funnel = FunnelFigures::default();
    for state in states.values() {
        funnel.add(&state.funnel_figures());
    }
    let served: Funnel = get("/funnel".into()).await.json().await.unwrap();
    let counts =
        |s: &shopmesh_analytics::routes::funnel::FunnelStage| (s.viewers, s.carters, s.buyers);
    let expected_counts =
        |c: &shopmesh_analytics::state::FunnelCounts| (c.viewers, c.carters, c.buyers);
    assert_eq!(
        counts(&served.overall),
        expected_counts(&funnel.overall),
        "funnel"
    );
    assert_eq!(
        served.by_category.len(),
        funnel.by_category.len(),
        "funnel categories"
    );
    for (category, expected) in &funnel.by_category {
        let stage = served
            .by_category
            .get(category.as_str())
            .unwrap_or_else(|| panic!("funnel of {category}"));
        assert_eq!(
            counts(stage),
            expected_counts(expected),
            "funnel of {category}"
        );
    }

    // Recommendations read the product-keyed view the actors keep (and a
    // restart rebuilds): they equal the same pipeline over the recomputation.
    let items = ItemGraph::from_states(states.values());
    let shards = LocalShards {
        states: states.values().collect(),
        items: &items,
        settings: RecommenderSettings::default(),
        now_ms,
    };
    for product in &products {
        let expected = recommend::similar(&shards, *product, 5, &shards.settings)
            .await
            .unwrap();
        let served: SimilarProducts = get(format!("/products/{product}/similar?k=5"))
            .await
            .json()
            .await
            .unwrap();
        assert_same_items(&served.items, &expected, &format!("similar to {product}"));
    }
    for user in &users {
        let request = recommend::pipeline::Request {
            k: 5,
            require_catalogue: true,
            ..Default::default()
        };
        let expected = recommend::recommend(&shards, *user, request, &shards.settings)
            .await
            .unwrap();
        let served: UserRecommendations = get(format!("/recommendations/{user}?k=5"))
            .await
            .json()
            .await
            .unwrap();
        assert_same_items(
            &served.items,
            &expected,
            &format!("recommendations for {user}"),
        );
    }
    applied
}
