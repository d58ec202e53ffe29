//! Every service serves `/metrics` in the Prometheus text format, read here
//! with an independent exposition-format parser.

mod mesh;

use mesh::Mesh;
use shopmesh_shared::testkit::{DatabaseKind, eventually};
use std::time::Duration;

async fn scrape_metrics(mesh: &Mesh, base: &str) -> prometheus_parse::Scrape {
    let response = mesh
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("{base}: {e}\n{text}"))
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[tokio::test]
async fn every_service_exposes_request_and_event_metrics() {
    let mesh = Mesh::start(DatabaseKind::Sqlite).await;
    let token = mesh.shopper("metrics@example.com").await;
    let product = mesh.product("Metered", "books", 1_00, 5).await;
    mesh.add_to_cart(&token, &product, 1).await;
    assert_eq!(mesh.checkout(&token).await.status(), 201);

    for base in [&mesh.user, &mesh.product, &mesh.order] {
        let scrape = scrape_metrics(&mesh, base).await;
        for family in [
            "shopmesh_http_requests_total",
            "shopmesh_http_request_duration_seconds",
            "shopmesh_outbox_backlog",
        ] {
            assert!(
                scrape.samples.iter().any(|s| s.metric.starts_with(family)),
                "{base} lacks {family}"
            );
        }
    }
    // In-process, the three services share one registry; the figures
    // still tell what happened.
    let scrape = scrape_metrics(&mesh, &mesh.order).await;
    let checkouts = value(
        &scrape,
        "shopmesh_http_requests_total",
        &[("method", "POST"), ("route", "/orders"), ("status", "201")],
    );
    assert_eq!(checkouts, Some(1.0));
    // Each write above (the registration, the product, the cart line, the
    // reservation, the order) waited its turn at its service's SQLite write
    // queue; the outbox relays' updates add to that.
    let write_turns = value(&scrape, "shopmesh_db_write_wait_seconds_count", &[]);
    assert!(write_turns.is_some_and(|n| n >= 5.0), "{write_turns:?}");
    eventually(
        Duration::from_secs(20),
        "order.placed counted as published",
        async || {
            let scrape = scrape_metrics(&mesh, &mesh.order).await;
            value(
                &scrape,
                "shopmesh_events_published_total",
                &[("type", "order.placed")],
            ) == Some(1.0)
        },
    )
    .await;
}
