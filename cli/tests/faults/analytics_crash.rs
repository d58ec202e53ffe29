//! kill -9 of the analytics process while the real services publish a
//! shopping load (`shopmesh load`), a restart on the same NATS and snapshot
//! bucket, and, once the stream is drained, every aggregate it serves equal
//! to a single-threaded recomputation over the whole stream.

use crate::processes::{ADMIN_TOKEN, DomainServices, ServiceProcess, analytics_env};
use crate::recompute::{applied_total, assert_matches_recomputation, wait_drained};
use crate::shop::http_client;
use crate::stream::{StreamFacts, read_stream};
use serde_json::Value;
use shopmesh_shared::subjects::PartitionCount;
use shopmesh_shared::testkit::{TestBackbone, eventually};
use std::process::Stdio;
use std::time::Duration;

const CATALOGUE: u64 = 30;

fn shopmesh() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shopmesh"));
    command
        .env("RUST_LOG", "warn")
        .env_remove("SHOPMESH_USER_URL")
        .env_remove("SHOPMESH_PRODUCT_URL")
        .env_remove("SHOPMESH_ORDER_URL")
        .kill_on_drop(true);
    command
}

/// The events the load's summary accounts for, by type: one per successful
/// action, the catalogue, and one `product.updated` per order line placed
/// or cancelled (the stock moves), as cli/tests/load.rs establishes.
fn expected_by_type(summary: &Value, order_lines: u64) -> Vec<(String, u64)> {
    let ok = |action: &str| summary["actions"][action]["ok"].as_u64().unwrap_or(0);
    let mut expected = vec![
        ("user.registered", ok("register")),
        ("user.logged_in", ok("login")),
        ("product.created", CATALOGUE),
        ("product.viewed", ok("view")),
        ("product.searched", ok("search")),
        ("product.rated", ok("rate")),
        ("cart.item_added", ok("cart_add")),
        ("cart.item_removed", ok("cart_remove")),
        ("order.placed", ok("checkout")),
        ("order.cancelled", ok("cancel")),
        ("product.updated", order_lines),
    ];
    expected.retain(|(_, n)| *n > 0);
    let mut expected: Vec<(String, u64)> = expected
        .into_iter()
        .map(|(t, n)| (t.to_owned(), n))
        .collect();
    expected.sort();
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_killed_under_load_restarts_to_answers_equal_to_a_recomputation() {
    let backbone = TestBackbone::start().await;
    let http = http_client();
    let nats_url = backbone.server.url();
    let services = DomainServices::start(&http, &nats_url, &[], None).await;
    let mut analytics = ServiceProcess::spawn(
        "analytics",
        analytics_env(&nats_url, &[]),
        services.dir.path(),
    );
    analytics.wait_ready(&http).await;

    let count = CATALOGUE.to_string();
    let seeded = shopmesh()
        .args([
            "seed",
            "--product-url",
            &services.product.url,
            "--count",
            &count,
        ])
        .env("SHOPMESH_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .expect("run shopmesh seed");
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );

    let load = shopmesh()
        .args([
            "load",
            "--users",
            "8",
            "--rate",
            "400",
            "--duration",
            "10s",
            "--think-time",
            "5ms",
            "--seed",
            "11",
            "--json",
            "--user-url",
            &services.user.url,
            "--product-url",
            &services.product.url,
            "--order-url",
            &services.order.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shopmesh load");
    let load = tokio::spawn(load.wait_with_output());

    // kill -9 once a good part is applied, with events still flowing.
    eventually(
        Duration::from_secs(60),
        "analytics applied part of the load",
        async || applied_total(&http, &analytics.url).await.unwrap_or(0) >= 800,
    )
    .await;
    assert!(
        !load.is_finished(),
        "the kill must happen while the load is still running"
    );
    analytics.kill_9();
    let killed_at = crate::stream::stored_count(&backbone.js).await.unwrap_or(0);

    analytics.restart();
    analytics.wait_ready(&http).await;

    let output = tokio::time::timeout(Duration::from_secs(120), load)
        .await
        .expect("the load ends")
        .expect("load task")
        .expect("load output");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    assert_eq!(summary["unexpected_errors"], 0, "{summary:#}");

    // The services publish in the background (outbox relays, behaviour
    // buffers): wait until the stream holds every event of the summary.
    let complete = async || {
        let messages = read_stream(&backbone.js).await;
        let facts = StreamFacts::of(&messages);
        let order_lines: u64 = messages
            .iter()
            .filter_map(|m| match &m.event.as_ref()?.payload {
                shopmesh_shared::events::EventPayload::OrderPlaced(p) => Some(p.lines.len() as u64),
                shopmesh_shared::events::EventPayload::OrderCancelled(p) => {
                    Some(p.lines.len() as u64)
                }
                _ => None,
            })
            .sum();
        let got: Vec<(String, u64)> = facts.by_type.into_iter().collect();
        got == expected_by_type(&summary, order_lines)
    };
    eventually(
        Duration::from_secs(60),
        "every event of the load in the stream",
        complete,
    )
    .await;
    let messages = read_stream(&backbone.js).await;
    let facts = StreamFacts::of(&messages);
    assert!(facts.duplicate_ids.is_empty(), "{:?}", facts.duplicate_ids);

    wait_drained(&http, &analytics.url, &messages, Duration::from_secs(120)).await;
    let applied =
        assert_matches_recomputation(&http, &analytics.url, &messages, PartitionCount::default())
            .await;
    eprintln!(
        "analytics crash: killed with {killed_at} events in the stream; after the restart \
         {applied} events applied, every aggregate equal to the recomputation"
    );
}
