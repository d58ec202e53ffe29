//! `shopmesh tail` decodes what the publisher sent, with its headers.

use shopmesh_shared::events::{EventType, UserId};
use shopmesh_shared::testkit::{TestBackbone, eventually, sample_events, viewed_by};
use std::process::{Command, Stdio};
use std::time::Duration;

fn tail(backbone: &TestBackbone, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopmesh"));
    command
        .arg("tail")
        .args(args)
        .env("NATS_URL", backbone.server.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn history_mode_prints_the_filtered_events_and_flags_garbage() {
    let backbone = TestBackbone::start().await;
    let publisher = backbone.publisher();
    let orders: Vec<_> = sample_events()
        .into_iter()
        .filter(|e| e.event_type().domain() == "order")
        .collect();
    for event in &orders {
        publisher.publish(event).await.unwrap();
    }
    publisher
        .publish(&viewed_by(UserId::new_v7()))
        .await
        .unwrap();
    backbone
        .js
        .publish("shopmesh.events.order.placed.0", "garbage".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let output = tail(
        &backbone,
        &["shopmesh.events.order.>", "--history", "--count", "3"],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 3);
    for (line, event) in lines.iter().zip(&orders) {
        assert_eq!(line["headers"]["id"], event.meta.event_id.to_string());
        assert_eq!(line["headers"]["type"], event.event_type().as_str());
        assert!(
            line["headers"]["traceparent"]
                .as_str()
                .unwrap()
                .starts_with("00-")
        );
        assert_eq!(line["event"]["event_id"], event.meta.event_id.to_string());
        assert_eq!(line["event"]["type"], event.event_type().as_str());
    }
    assert_eq!(lines[0]["event"]["payload"]["total_cents"], 8_498);
    assert!(
        lines[2]["error"].as_str().unwrap().contains("header"),
        "{}",
        lines[2]
    );
}

#[tokio::test]
async fn live_mode_follows_new_events_on_a_wildcard() {
    let backbone = TestBackbone::start().await;
    let child = tail(
        &backbone,
        &["shopmesh.events.product.viewed.*", "--count", "1"],
    )
    .spawn()
    .unwrap();
    let publisher = backbone.publisher();
    let user = UserId::new_v7();
    // The subscription starts a moment after the process: publish until it
    // has seen one.
    let child = std::sync::Mutex::new(child);
    eventually(
        Duration::from_secs(20),
        "tail printed a live event",
        async || {
            publisher.publish(&viewed_by(user)).await.unwrap();
            child.lock().unwrap().try_wait().unwrap().is_some()
        },
    )
    .await;
    let output = child.into_inner().unwrap().wait_with_output().unwrap();
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["event"]["type"], EventType::ProductViewed.as_str());
    assert_eq!(lines[0]["event"]["user_id"], user.to_string());
}
