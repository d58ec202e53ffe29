//! Test harness: the app started in-process on a real nats-server, a
//! deterministic event generator, and the sequential recomputation the actor
//! path is compared against.

use actix_web::dev::ServerHandle;
use async_nats::jetstream;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use shopmesh_analytics::gather::{merge_products, top_k};
use shopmesh_analytics::settings::{AggregateSettings, Settings};
use shopmesh_analytics::startup::Application;
use shopmesh_analytics::state::{FunnelFigures, PartitionState, ProductFigures, ScoredProduct};
use shopmesh_analytics::testkit;
pub use shopmesh_analytics::testkit::assert_profile_eq;
use shopmesh_analytics::window::WindowKind;
use shopmesh_shared::events::*;
use shopmesh_shared::nats::EventPublisher;
use shopmesh_shared::nats::headers::decode_message;
use shopmesh_shared::settings::Env;
use shopmesh_shared::subjects::PartitionCount;
pub use shopmesh_shared::testkit::SyntheticShop;
use shopmesh_shared::testkit::{TestBackbone, eventually};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Partitions in tests: enough to spread users, few enough to start fast.
pub const PARTITIONS: u16 = 8;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub handle: ServerHandle,
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// The environment of an app on `backbone`, plus `extra`.
pub fn app_env(backbone: &TestBackbone, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = vec![
        ("NATS_URL".into(), backbone.server.url()),
        ("SHOPMESH_HTTP_PORT".into(), "0".into()),
        ("SHOPMESH_HTTP_WORKERS".into(), "1".into()),
        ("SHOPMESH_PARTITIONS".into(), PARTITIONS.to_string()),
        ("SHOPMESH_ANALYTICS_ARBITERS".into(), "2".into()),
        ("SHOPMESH_CONSUMER_ACK_WAIT".into(), "5s".into()),
        ("SHOPMESH_CONSUMER_NAK_DELAY".into(), "100ms".into()),
        ("SHOPMESH_SHUTDOWN_GRACE".into(), "2s".into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push(((*k).into(), (*v).into()));
    }
    pairs
}

pub async fn spawn_app(backbone: &TestBackbone, extra: &[(&str, &str)]) -> TestApp {
    let settings = Settings::from_env(&Env::from_pairs(app_env(backbone, extra)))
        .expect("valid test settings");
    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    let task = actix::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        handle,
        task,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    pub async fn stats(&self) -> serde_json::Value {
        self.get_json("/stats").await
    }

    /// Stops gracefully (drain, final snapshots) and waits for the end.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.task.await.expect("app task").expect("app ran cleanly");
    }
}

/// True when every partition of `stats` has nothing pending or unacked.
pub fn caught_up(stats: &serde_json::Value) -> bool {
    stats["partitions"]
        .as_array()
        .is_some_and(|ps| ps.iter().all(|p| p["lag"].as_u64() == Some(0)))
}

/// Waits until the app has applied and acknowledged everything published.
pub async fn wait_caught_up(apps: &[&TestApp]) {
    eventually(
        Duration::from_secs(60),
        "every partition caught up",
        async || {
            for app in apps {
                if !caught_up(&app.stats().await) {
                    return false;
                }
            }
            true
        },
    )
    .await;
}

/// A publisher using the tests' partition count (the testkit's uses the
/// default 32).
pub fn publisher(backbone: &TestBackbone) -> EventPublisher {
    let mut streams = backbone.settings.streams.clone();
    streams.partitions = partition_count();
    EventPublisher::new(
        backbone.client.clone(),
        &backbone.settings.publisher,
        &streams,
    )
}

/// Publishes `events` (sent in a pipeline, then confirmed).
pub async fn publish_all(backbone: &TestBackbone, events: &[Event]) {
    let publisher = publisher(backbone);
    for chunk in events.chunks(256) {
        let mut pending = Vec::with_capacity(chunk.len());
        for event in chunk {
            let outbound = publisher.prepare(event).expect("encodes");
            pending.push(publisher.send(outbound).await.expect("sent"));
        }
        for p in pending {
            p.confirm().await.expect("stored");
        }
    }
}

/// Every message of every partition's events stream, partition by
/// partition, each in stream order: (sequence, partition, event when it
/// decodes).
pub async fn read_stream(js: &jetstream::Context) -> Vec<(u64, u16, Option<Event>)> {
    let mut out = Vec::new();
    for partition in partition_count().all() {
        let name = format!("SHOPMESH_EVENTS_{partition}");
        let mut stream = js.get_stream(&name).await.expect("stream");
        let last = stream.info().await.expect("info").state.last_sequence;
        if last == 0 {
            continue;
        }
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await
            .expect("ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        while let Some(message) = messages.next().await {
            let message = message.expect("message");
            let sequence = message.info().expect("info").stream_sequence;
            let event = decode_message(message.headers.as_ref(), &message.payload).ok();
            out.push((sequence, partition.index(), event));
            if sequence >= last {
                break;
            }
        }
    }
    out
}

/// The straightforward, single-threaded recomputation: every event applied
/// in stream order to its partition's state (undecodable messages skipped).
pub fn recompute(
    messages: &[(u64, u16, Option<Event>)],
    config: &AggregateSettings,
) -> BTreeMap<u16, PartitionState> {
    testkit::recompute(
        messages.iter().filter_map(|(sequence, partition, event)| {
            Some((*sequence, *partition, event.as_ref()?))
        }),
        config,
    )
}

pub fn expected_product(
    states: &BTreeMap<u16, PartitionState>,
    product: ProductId,
    now_ms: i64,
) -> Option<ProductFigures> {
    merge_products(
        states
            .values()
            .filter_map(|s| s.product_figures(product, now_ms)),
    )
}

pub fn expected_trending(
    states: &BTreeMap<u16, PartitionState>,
    window: WindowKind,
    category: Option<&Category>,
    k: usize,
) -> Vec<ScoredProduct> {
    let now = Timestamp::now().as_millis();
    top_k(
        states
            .values()
            .flat_map(|s| s.scored_products(window, category, now)),
        k,
    )
}

pub fn expected_funnel(states: &BTreeMap<u16, PartitionState>) -> FunnelFigures {
    let mut total = FunnelFigures::default();
    for state in states.values() {
        total.add(&state.funnel_figures());
    }
    total
}

pub fn partition_count() -> PartitionCount {
    PartitionCount::new(PARTITIONS).unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaks none.
pub struct Binary(pub Child);

impl Binary {
    /// SIGTERM: a graceful stop (drain, final snapshots, span flush); the
    /// exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        self.0.wait().expect("the binary's exit status")
    }

    pub fn kill_9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The real binary, on `port`, snapshotting often.
pub fn start_binary(backbone: &TestBackbone, port: u16, more: &[(&str, &str)]) -> Binary {
    let extra = [
        ("SHOPMESH_HTTP_PORT", port.to_string()),
        ("SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL", "150ms".to_owned()),
        ("SHOPMESH_ANALYTICS_SNAPSHOT_EVERY", "97".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let mut extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.extend_from_slice(more);
    Binary(
        Command::new(env!("CARGO_BIN_EXE_shopmesh-analytics"))
            .env_clear()
            .envs(app_env(backbone, &extra))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts"),
    )
}
