//! The analytics service's `/metrics`, read with an independent
//! exposition-format parser: consumer lag and mailbox depth per partition,
//! snapshot time and size, recommendation latency, messages by outcome.

use crate::helpers::*;
use shopmesh_analytics::run_system;
use shopmesh_shared::events::UserId;
use shopmesh_shared::testkit::TestBackbone;

fn samples<'a>(
    scrape: &'a prometheus_parse::Scrape,
    name: &'a str,
) -> impl Iterator<Item = &'a prometheus_parse::Sample> + 'a {
    scrape.samples.iter().filter(move |s| s.metric == name)
}

fn number(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

#[test]
fn metrics_cover_lag_mailboxes_snapshots_and_recommendations() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        // Snapshots every few events, so that every busy partition has one.
        let app = spawn_app(&backbone, &[("SHOPMESH_ANALYTICS_SNAPSHOT_EVERY", "5")]).await;
        let mut generator = SyntheticShop::new(3, 12, 6);
        let mut events = generator.catalogue();
        events.extend((0..300).map(|_| generator.event()));
        publish_all(&backbone, &events).await;
        wait_caught_up(&[&app]).await;
        let user = generator.users[0];
        let _: serde_json::Value = app.get_json(&format!("/recommendations/{user}")).await;
        let _: serde_json::Value = app
            .get_json(&format!("/recommendations/{}", UserId::new_v7()))
            .await;

        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));

        let handled: f64 = samples(&scrape, "shopmesh_consumer_messages_total")
            .filter(|s| s.labels.get("outcome") == Some("handled"))
            .map(number)
            .sum();
        assert_eq!(handled, events.len() as f64);
        // Caught up: every partition that received something shows lag 0
        // and an empty mailbox.
        let lags: Vec<f64> = samples(&scrape, "shopmesh_consumer_lag")
            .map(number)
            .collect();
        assert!(
            !lags.is_empty() && lags.iter().all(|&l| l == 0.0),
            "{lags:?}"
        );
        let mailboxes: Vec<f64> = samples(&scrape, "shopmesh_actor_mailbox_depth")
            .map(number)
            .collect();
        assert!(!mailboxes.is_empty() && mailboxes.iter().all(|&d| d == 0.0));
        let now = shopmesh_shared::events::Timestamp::now().as_millis() as f64 / 1000.0;
        let snapshot_times: Vec<f64> = samples(&scrape, "shopmesh_snapshot_timestamp_seconds")
            .map(number)
            .collect();
        assert!(!snapshot_times.is_empty());
        assert!(
            snapshot_times
                .iter()
                .all(|&t| t > now - 60.0 && t <= now + 1.0)
        );
        assert!(samples(&scrape, "shopmesh_snapshot_bytes").all(|s| number(s) > 0.0));
        let answered = samples(&scrape, "shopmesh_recommendation_duration_seconds")
            .find_map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().map(|b| b.count).reduce(f64::max)
                }
                _ => None,
            })
            .expect("a recommendation latency histogram");
        assert_eq!(answered, 2.0);
        app.stop().await;
    });
}
