//! The REST reads: answers equal a sequential recomputation over the stream,
//! and invalid parameters are 400 problems naming the parameter.

use crate::helpers::*;
use shopmesh_analytics::routes::funnel::Funnel;
use shopmesh_analytics::routes::products::ProductStats;
use shopmesh_analytics::routes::trending::Trending;
use shopmesh_analytics::run_system;
use shopmesh_analytics::settings::AggregateSettings;
use shopmesh_analytics::state::UserProfile;
use shopmesh_analytics::window::WindowKind;
use shopmesh_shared::events::{Category, ProductId, Timestamp, UserId};
use shopmesh_shared::subjects::partition_for;
use shopmesh_shared::testkit::TestBackbone;

#[test]
fn every_read_equals_a_sequential_recomputation() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let app = spawn_app(&backbone, &[]).await;
        let mut generator = SyntheticShop::new(7, 20, 12);
        let mut events = generator.catalogue();
        events.extend((0..1500).map(|_| generator.event()));
        publish_all(&backbone, &events).await;
        wait_caught_up(&[&app]).await;

        let messages = read_stream(&backbone.js).await;
        assert_eq!(messages.len(), events.len());
        let states = recompute(&messages, &AggregateSettings::default());

        for user in &generator.users {
            let profile: UserProfile = app.get_json(&format!("/users/{user}/profile")).await;
            let partition = partition_for(Some(user), partition_count()).index();
            let expected = states[&partition]
                .user_profile(*user, AggregateSettings::default().affinity_half_life)
                .unwrap();
            assert_profile_eq(&profile, &expected);
            assert!(profile.recent.len() <= 50);
        }

        for (product, _) in &generator.products {
            let stats: ProductStats = app.get_json(&format!("/products/{product}/stats")).await;
            let expected =
                expected_product(&states, *product, Timestamp::now().as_millis()).unwrap();
            assert_eq!(stats.product_id, *product);
            assert_eq!(stats.figures.category, expected.category);
            assert_eq!(stats.figures.all_time, expected.all_time);
            assert_eq!(stats.figures.last_24h, expected.last_24h);
            assert_eq!(stats.figures.last_1h, expected.last_1h);
            // Everything just happened: the 24-hour window holds it all.
            assert_eq!(stats.figures.last_24h, stats.figures.all_time);
        }

        let trending: Trending = app.get_json("/trending?window=24h&k=5").await;
        assert_eq!(trending.window, WindowKind::Day);
        assert_eq!(
            trending.products,
            expected_trending(&states, WindowKind::Day, None, 5)
        );
        assert_eq!(trending.products.len(), 5);
        let books = Category::parse("books").unwrap();
        let trending: Trending = app
            .get_json("/trending?window=1h&category=books&k=100")
            .await;
        assert_eq!(
            trending.products,
            expected_trending(&states, WindowKind::OneHour, Some(&books), 100)
        );
        assert!(
            trending
                .products
                .iter()
                .all(|p| p.category.as_ref() == Some(&books))
        );

        let funnel: Funnel = app.get_json("/funnel").await;
        let expected = expected_funnel(&states);
        assert_eq!(funnel.overall.viewers, expected.overall.viewers);
        assert_eq!(funnel.overall.carters, expected.overall.carters);
        assert_eq!(funnel.overall.buyers, expected.overall.buyers);
        assert!(funnel.overall.viewers > 0 && funnel.overall.viewers <= 20);
        for (category, counts) in &expected.by_category {
            let got = &funnel.by_category[category.as_str()];
            assert_eq!(
                (got.viewers, got.carters, got.buyers),
                (counts.viewers, counts.carters, counts.buyers)
            );
        }

        let product = generator.products[0].0;
        let neighbours: serde_json::Value = app
            .get_json(&format!("/products/{product}/neighbours?k=3"))
            .await;
        let list = neighbours["neighbours"].as_array().unwrap();
        assert!(!list.is_empty() && list.len() <= 3);

        let stats = app.stats().await;
        assert_eq!(
            stats["partitions"].as_array().unwrap().len(),
            PARTITIONS as usize
        );
        assert_eq!(
            stats["consumer"]["handled"].as_u64().unwrap(),
            events.len() as u64
        );
        let applied: u64 = stats["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["applied"].as_u64().unwrap())
            .sum();
        assert_eq!(applied, events.len() as u64);
        app.stop().await;
    });
}

#[test]
fn invalid_parameters_are_problems_naming_the_parameter() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let app = spawn_app(&backbone, &[]).await;
        for (path, field) in [
            ("/users/not-a-uuid/profile", "id"),
            ("/products/42/stats", "id"),
            ("/products/42/neighbours", "id"),
            ("/trending?window=2h", "window"),
            ("/trending?k=0", "k"),
            ("/trending?k=101", "k"),
            ("/trending?k=ten", "k"),
            ("/trending?category=Not%20A%20Slug", "category"),
            (
                &format!("/products/{}/neighbours?k=1000", ProductId::new_v7()),
                "k",
            ),
        ] {
            let response = app.get(path).await;
            assert_eq!(response.status(), 400, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{path}"
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["field"], field, "{path}");
            assert_eq!(body["status"], 400);
        }
        for path in [
            format!("/users/{}/profile", UserId::new_v7()),
            format!("/products/{}/stats", ProductId::new_v7()),
        ] {
            let response = app.get(&path).await;
            assert_eq!(response.status(), 404, "{path}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["type"], "/problems/not-found");
        }
        // Empty state still answers.
        let trending: Trending = app.get_json("/trending").await;
        assert!(trending.products.is_empty());
        let funnel: Funnel = app.get_json("/funnel").await;
        assert_eq!(funnel.overall.viewers, 0);
        assert_eq!(funnel.overall.view_to_cart, 0.0);
        assert_eq!(app.get("/healthz").await.status(), 200);
        assert_eq!(app.get("/readyz").await.status(), 200);
        app.stop().await;
    });
}
