//! Latency from a published event to a changed recommendation, with a
//! background event rate flowing through the same stream and actors.
//!
//! A probe is a new user (no history) and a product `P` whose "similar"
//! list is not empty. Its event is that user viewing `P`; from then on the
//! user's history is `[P]`, so `GET /recommendations/{user}` must answer
//! items recommended *because of* `P` (the same ranking as `P`'s similar
//! list), which it cannot do before the event is applied. Timed from the
//! start of the publish until an answer names `P` as the reason, asking
//! again as soon as an answer comes back; a probe not visible within
//! [`PROBE_DEADLINE`] counts as a timeout, with its time kept.

use super::samples::{Percentiles, Samples};
use super::workload::{self, Product, Workload};
use anyhow::Context;
use serde::Serialize;
use shopmesh_shared::events::{ProductId, UserId};
use shopmesh_shared::nats::{EventPublisher, PendingPublish};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const PROBE_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
pub struct ProbeFigures {
    pub probes: usize,
    pub probe_rate: f64,
    /// The background rate asked for and the one achieved, events/s.
    pub background_target_rate: f64,
    pub background_rate: f64,
    pub timeouts: usize,
    #[serde(flatten)]
    pub latency: Percentiles,
}

/// Up to `want` products whose similar list is not empty now (so one view
/// of them gives a new user recommendations because of them).
pub async fn candidates(
    http: &reqwest::Client,
    analytics: &str,
    products: &[Product],
    want: usize,
) -> anyhow::Result<Vec<Product>> {
    let mut found = Vec::new();
    for product in products {
        let url = format!("{analytics}/products/{}/similar?k=10", product.id);
        let body: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .with_context(|| format!("GET {url}"))?;
        if body["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            found.push(product.clone());
            if found.len() == want {
                break;
            }
        }
    }
    anyhow::ensure!(
        !found.is_empty(),
        "no product has similar products yet: the throughput phase should have made co-occurrences"
    );
    Ok(found)
}

/// Whether `user`'s recommendations name `because` as a reason.
async fn changed(http: &reqwest::Client, url: &str, because: ProductId) -> bool {
    let Ok(response) = http.get(url).send().await else {
        return false;
    };
    if !response.status().is_success() {
        return false;
    }
    let Ok(body) = response.json::<serde_json::Value>().await else {
        return false;
    };
    let because = because.to_string();
    body["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|item| item["because"].as_str() == Some(because.as_str()))
    })
}

pub struct Probes<'a> {
    pub publisher: &'a EventPublisher,
    pub http: &'a reqwest::Client,
    pub analytics: &'a str,
    pub candidates: &'a [Product],
}

impl Probes<'_> {
    /// `count` probes at `rate` per second while `background` events/s are
    /// published from `workload`; gives the workload back.
    pub async fn run(
        &self,
        count: usize,
        rate: f64,
        background_rate: f64,
        workload: Workload,
    ) -> anyhow::Result<(ProbeFigures, Workload)> {
        let (stop, stopped) = watch::channel(false);
        let background = tokio::spawn(background(
            self.publisher.clone(),
            workload,
            background_rate,
            stopped,
        ));
        let measured = self.probe(count, rate).await;
        let _ = stop.send(true);
        let (sent, elapsed, workload) = background.await??;
        let (samples, timeouts) = measured?;
        Ok((
            ProbeFigures {
                probes: samples.len(),
                probe_rate: rate,
                background_target_rate: background_rate,
                background_rate: (sent as f64 / elapsed.as_secs_f64().max(1e-9)).round(),
                timeouts,
                latency: samples.percentiles(),
            },
            workload,
        ))
    }

    async fn probe(&self, count: usize, rate: f64) -> anyhow::Result<(Samples, usize)> {
        let mut samples = Samples::default();
        let mut timeouts = 0;
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for n in 0..count {
            ticker.tick().await;
            let user = UserId::new_v7();
            let product = &self.candidates[n % self.candidates.len()];
            let event = workload::view(user, product);
            let url = format!("{}/recommendations/{user}?k=10", self.analytics);
            let start = Instant::now();
            self.publisher.publish(&event).await?;
            while !changed(self.http, &url, product.id).await {
                if start.elapsed() >= PROBE_DEADLINE {
                    timeouts += 1;
                    break;
                }
            }
            samples.push(start.elapsed());
        }
        Ok((samples, timeouts))
    }
}

/// Publishes `workload` events at `rate` per second (due events sent every
/// millisecond, acks confirmed every 20 ms) until `stop` turns true; returns
/// how many and over how long.
async fn background(
    publisher: EventPublisher,
    mut workload: Workload,
    rate: f64,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(u64, Duration, Workload)> {
    let start = Instant::now();
    let mut sent = 0u64;
    let mut pending: VecDeque<PendingPublish<'_>> = VecDeque::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            let outbound = publisher.prepare(&workload.event())?;
            pending.push_back(publisher.send(outbound).await?);
            sent += 1;
        }
        ticks += 1;
        if ticks.is_multiple_of(20) {
            for publish in pending.drain(..) {
                publish.confirm().await?;
            }
        }
    }
    for publish in pending {
        publish.confirm().await?;
    }
    Ok((sent, start.elapsed(), workload))
}
