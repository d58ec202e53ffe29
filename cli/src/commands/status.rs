//! The status line of `shopmesh up`: events per second into the stream,
//! HTTP requests per second and their p99 latency across the services (from
//! their `/metrics`), and the outbox backlog, over the last interval.

use anyhow::Context;
use async_nats::jetstream;
use shopmesh_shared::nats::{connect, jetstream_context};
use shopmesh_shared::settings::BackboneSettings;
use std::collections::BTreeMap;
use std::time::Instant;

/// Routes of the platform's own plumbing, left out of the figures.
const PLUMBING: [&str; 3] = ["/metrics", "/healthz", "/readyz"];

#[derive(Default, Clone)]
struct Sample {
    events: u64,
    requests: f64,
    /// Cumulative request counts per latency bucket bound, summed over services.
    buckets: BTreeMap<u64, f64>,
    backlog: f64,
}

pub struct Status {
    js: jetstream::Context,
    stream: String,
    urls: Vec<String>,
    http: reqwest::Client,
    last: Sample,
    at: Instant,
}

impl Status {
    pub async fn new(settings: &BackboneSettings, urls: Vec<String>) -> anyhow::Result<Self> {
        let client = connect(&settings.nats, "shopmesh-up").await?;
        let mut status = Self {
            js: jetstream_context(client, &settings.publisher),
            stream: settings.streams.events_stream.clone(),
            urls,
            http: reqwest::Client::new(),
            last: Sample::default(),
            at: Instant::now(),
        };
        status.last = status.sample().await?;
        Ok(status)
    }

    async fn sample(&self) -> anyhow::Result<Sample> {
        let info = self.js.get_stream(&self.stream).await?.get_info().await?;
        let mut sample = Sample {
            events: info.state.messages,
            ..Sample::default()
        };
        for url in &self.urls {
            let text = self
                .http
                .get(format!("{url}/metrics"))
                .send()
                .await?
                .text()
                .await
                .with_context(|| format!("{url}/metrics"))?;
            let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))?;
            for s in &scrape.samples {
                let route = s.labels.get("route").unwrap_or_default();
                if PLUMBING.contains(&route) {
                    continue;
                }
                match (&s.metric[..], &s.value) {
                    ("shopmesh_http_requests_total", prometheus_parse::Value::Counter(v)) => {
                        sample.requests += v
                    }
                    (
                        "shopmesh_http_request_duration_seconds",
                        prometheus_parse::Value::Histogram(h),
                    ) => {
                        for bucket in h {
                            if bucket.less_than.is_finite() {
                                let micros = (bucket.less_than * 1e6).round() as u64;
                                *sample.buckets.entry(micros).or_default() += bucket.count;
                            }
                        }
                    }
                    ("shopmesh_outbox_backlog", prometheus_parse::Value::Gauge(v)) => {
                        sample.backlog += v
                    }
                    _ => {}
                }
            }
        }
        Ok(sample)
    }

    /// The figures since the previous line.
    pub async fn line(&mut self) -> anyhow::Result<String> {
        let now = self.sample().await?;
        let seconds = self.at.elapsed().as_secs_f64().max(1e-3);
        let events = now.events.saturating_sub(self.last.events) as f64 / seconds;
        let requests = now.requests - self.last.requests;
        let total = requests.max(0.0);
        let p99 = now
            .buckets
            .iter()
            .find(|(bound, count)| {
                let before = self.last.buckets.get(bound).copied().unwrap_or(0.0);
                total > 0.0 && *count - before >= 0.99 * total
            })
            .map(|(bound, _)| format!("{:.1} ms", *bound as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "events {events:>8.0}/s | requests {:>8.0}/s | p99 <= {p99} | outbox backlog {} | stream {} events",
            total / seconds,
            now.backlog,
            now.events
        );
        self.last = now;
        self.at = Instant::now();
        Ok(line)
    }
}
