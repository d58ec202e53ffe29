//! Two instances splitting the partitions answer, summed, what one instance
//! and the sequential recomputation answer.

use crate::helpers::*;
use shopmesh_analytics::routes::funnel::Funnel;
use shopmesh_analytics::routes::products::ProductStats;
use shopmesh_analytics::routes::trending::Trending;
use shopmesh_analytics::run_system;
use shopmesh_analytics::settings::AggregateSettings;
use shopmesh_analytics::state::ScoredProduct;
use shopmesh_analytics::window::WindowKind;
use shopmesh_shared::testkit::TestBackbone;
use std::collections::BTreeMap;

fn funnel_triple(f: &Funnel) -> (u64, u64, u64) {
    (f.overall.viewers, f.overall.carters, f.overall.buyers)
}

#[test]
fn two_instances_sum_to_one() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let mut generator = SyntheticShop::new(5, 30, 10);
        let mut events = generator.catalogue();
        events.extend((0..1200).map(|_| generator.event()));
        publish_all(&backbone, &events).await;

        let instance = |index: &'static str| {
            [
                ("SHOPMESH_ANALYTICS_INSTANCE_INDEX", index),
                ("SHOPMESH_ANALYTICS_INSTANCE_COUNT", "2"),
            ]
        };
        let a = spawn_app(&backbone, &instance("0")).await;
        let b = spawn_app(&backbone, &instance("1")).await;
        wait_caught_up(&[&a, &b]).await;
        let (stats_a, stats_b) = (a.stats().await, b.stats().await);
        let owned = |s: &serde_json::Value| {
            s["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["partition"].as_u64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(owned(&stats_a), vec![0, 2, 4, 6]);
        assert_eq!(owned(&stats_b), vec![1, 3, 5, 7]);

        let states = recompute(
            &read_stream(&backbone.js).await,
            &AggregateSettings::default(),
        );

        let funnel_a: Funnel = a.get_json("/funnel").await;
        let funnel_b: Funnel = b.get_json("/funnel").await;
        let (x, y) = (funnel_triple(&funnel_a), funnel_triple(&funnel_b));
        let summed_funnel = (x.0 + y.0, x.1 + y.1, x.2 + y.2);
        let expected = expected_funnel(&states).overall;
        assert_eq!(
            summed_funnel,
            (expected.viewers, expected.carters, expected.buyers)
        );

        let mut summed_products = BTreeMap::new();
        for (product, _) in &generator.products {
            let mut all_time = shopmesh_analytics::window::Counters::default();
            for app in [&a, &b] {
                let response = app.get(&format!("/products/{product}/stats")).await;
                if response.status() == 200 {
                    let stats: ProductStats = response.json().await.unwrap();
                    all_time.add(&stats.figures.all_time);
                }
            }
            summed_products.insert(*product, all_time);
        }

        let trending = async |app: &TestApp| -> Vec<ScoredProduct> {
            let t: Trending = app.get_json("/trending?window=24h&k=100").await;
            t.products
        };
        let summed_trending = shopmesh_analytics::gather::top_k(
            trending(&a).await.into_iter().chain(trending(&b).await),
            100,
        );
        assert_eq!(
            summed_trending,
            expected_trending(&states, WindowKind::Day, None, 100)
        );
        check_rpc(&backbone, &generator, &states).await;
        a.stop().await;
        b.stop().await;

        // One instance over every partition (its own snapshot bucket, so it
        // replays the stream from the start) answers the same.
        let one = spawn_app(
            &backbone,
            &[("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET", "single")],
        )
        .await;
        wait_caught_up(&[&one]).await;
        let funnel: Funnel = one.get_json("/funnel").await;
        assert_eq!(funnel_triple(&funnel), summed_funnel);
        for (product, summed) in &summed_products {
            let stats: ProductStats = one.get_json(&format!("/products/{product}/stats")).await;
            assert_eq!(&stats.figures.all_time, summed, "{product}");
        }
        assert_eq!(trending(&one).await, summed_trending);
        one.stop().await;
    });
}

/// The NATS endpoints: one partial per instance, merged by the caller, equal
/// the recomputation; a malformed request is a 400 service error.
async fn check_rpc(
    backbone: &TestBackbone,
    generator: &SyntheticShop,
    states: &BTreeMap<u16, shopmesh_analytics::state::PartitionState>,
) {
    use shopmesh_analytics::gather::{merge_neighbours, merge_products, top_k};
    use shopmesh_analytics::rpc::*;
    use shopmesh_shared::events::Timestamp;
    use std::time::Duration;
    let client = &backbone.client;
    let timeout = Duration::from_secs(5);

    let funnel: Vec<FunnelReply> = scatter(client, FUNNEL, &FunnelRequest {}, timeout)
        .await
        .unwrap();
    assert_eq!(funnel.len(), 2);
    assert_eq!(funnel[0].partitions, vec![0, 2, 4, 6]);
    let mut merged = shopmesh_analytics::state::FunnelFigures::default();
    for partial in &funnel {
        merged.add(&partial.answer);
    }
    assert_eq!(merged, expected_funnel(states));

    let request = TrendingRequest {
        window: WindowKind::Day,
        category: None,
    };
    let trending: Vec<TrendingReply> = scatter(client, TRENDING, &request, timeout).await.unwrap();
    assert_eq!(
        top_k(trending.into_iter().flat_map(|p| p.answer), 3),
        expected_trending(states, WindowKind::Day, None, 3)
    );

    for (product, _) in &generator.products {
        let request = ProductRequest {
            product_id: *product,
        };
        let replies: Vec<ProductReply> = scatter(client, PRODUCT, &request, timeout).await.unwrap();
        let merged = merge_products(replies.into_iter().filter_map(|p| p.answer)).unwrap();
        let expected = expected_product(states, *product, Timestamp::now().as_millis()).unwrap();
        assert_eq!(merged.all_time, expected.all_time);

        let request = NeighboursRequest {
            product_id: *product,
        };
        let replies: Vec<NeighboursReply> = scatter(client, NEIGHBOURS, &request, timeout)
            .await
            .unwrap();
        let merged = merge_neighbours(
            replies
                .into_iter()
                .flat_map(|p| p.answer.into_iter().map(|n| (n.product_id, n.weight))),
            10,
        );
        let expected = merge_neighbours(states.values().flat_map(|s| s.neighbours(*product)), 10);
        assert_eq!(merged, expected);
    }

    let user = generator.users[0];
    let replies: Vec<ProfileReply> =
        scatter(client, PROFILE, &ProfileRequest { user_id: user }, timeout)
            .await
            .unwrap();
    let profiles: Vec<_> = replies.into_iter().filter_map(|p| p.answer).collect();
    assert_eq!(profiles.len(), 1, "exactly one instance holds a user");
    assert_eq!(profiles[0].user_id, user);

    let error = scatter::<_, serde_json::Value>(client, FUNNEL, &"not an object", timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ScatterError::Service { ref code, .. } if code == "400"),
        "{error}"
    );
}
