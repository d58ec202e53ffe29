//! The status line of `shopmesh up`: events per second into the stream,
//! the analytics consumer's lag (summed over its partitions, from its
//! `/stats`), HTTP requests per second and their p99 latency across the
//! services (from their `/metrics`), the outbox backlog, and the background
//! load's actions per second, over the last interval.

use super::up::load::LoadFigures;
use anyhow::Context;
use async_nats::jetstream;
use shopmesh_shared::nats::{connect, jetstream_context, stored_event_count};
use shopmesh_shared::settings::{BackboneSettings, StreamSettings};
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
    /// Messages the analytics consumers have yet to receive; `None` when
    /// analytics could not say.
    lag: Option<u64>,
}

/// The line with `{` and `}` inside quoted label values turned into `(` and
/// `)`: prometheus-parse 0.2 ends the label set at the first `}`, so it
/// silently dropped every sample of a route pattern like `/products/{id}`
/// (most of the traffic). Only the `PLUMBING` routes are matched by name,
/// and they have no braces.
fn braces_out(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        out.push(match c {
            '{' if quoted => '(',
            '}' if quoted => ')',
            _ => c,
        });
        if quoted && !escaped && c == '"' {
            quoted = false;
        } else if !quoted && c == '"' {
            quoted = true;
        }
        escaped = quoted && !escaped && c == '\\';
    }
    out
}

pub struct Status {
    js: jetstream::Context,
    streams: StreamSettings,
    urls: Vec<String>,
    analytics_url: String,
    http: reqwest::Client,
    last: Sample,
    last_load_actions: u64,
    at: Instant,
}

impl Status {
    /// `urls`: every service whose `/metrics` counts (analytics included);
    /// `analytics_url`: where the consumer lag is read.
    pub async fn new(
        settings: &BackboneSettings,
        urls: Vec<String>,
        analytics_url: String,
    ) -> anyhow::Result<Self> {
        let client = connect(&settings.nats, "shopmesh-up").await?;
        let mut status = Self {
            js: jetstream_context(client, &settings.publisher),
            streams: settings.streams.clone(),
            urls,
            analytics_url,
            http: reqwest::Client::new(),
            last: Sample::default(),
            last_load_actions: 0,
            at: Instant::now(),
        };
        status.last = status.sample().await?;
        Ok(status)
    }

    async fn sample(&self) -> anyhow::Result<Sample> {
        let mut sample = Sample {
            events: stored_event_count(&self.js, &self.streams).await?,
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
            let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(braces_out(l))))?;
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
        sample.lag = self.lag().await;
        Ok(sample)
    }

    /// The sum of the analytics partitions' `lag` (those that know theirs).
    async fn lag(&self) -> Option<u64> {
        let stats: serde_json::Value = self
            .http
            .get(format!("{}/stats", self.analytics_url))
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?
            .json()
            .await
            .ok()?;
        let partitions = stats.get("partitions")?.as_array()?;
        Some(
            partitions
                .iter()
                .filter_map(|p| p.get("lag").and_then(serde_json::Value::as_u64))
                .sum(),
        )
    }

    /// The figures since the previous line.
    pub async fn line(&mut self, load: Option<LoadFigures>) -> anyhow::Result<String> {
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
        let lag = now
            .lag
            .map_or_else(|| "-".to_owned(), |lag| lag.to_string());
        let load = match load {
            None => "load off".to_owned(),
            Some(LoadFigures {
                failure: Some(why), ..
            }) => format!("load stopped: {why}"),
            Some(figures) if figures.signing_up => {
                format!("load signing up ({} shoppers so far)", figures.signed_up)
            }
            Some(figures) => {
                let done = figures.actions.saturating_sub(self.last_load_actions);
                self.last_load_actions = figures.actions;
                format!(
                    "load {:.1} actions/s, {} errors",
                    done as f64 / seconds,
                    figures.errors
                )
            }
        };
        let line = format!(
            "events {events:>8.0}/s | consumer lag {lag} | requests {:>8.0}/s | p99 <= {p99} | outbox backlog {} | stream {} events | {load}",
            total / seconds,
            now.backlog,
            now.events
        );
        self.last = now;
        self.at = Instant::now();
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_with_braces_are_counted() {
        let text = r#"# TYPE shopmesh_http_requests_total counter
shopmesh_http_requests_total{method="GET",route="/products/{id}",status="200"} 357
shopmesh_http_requests_total{method="GET",route="/a\"{b}",status="200"} 3
shopmesh_http_requests_total{method="GET",route="/metrics",status="200"} 13
"#;
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(braces_out(l)))).unwrap();
        let counted: Vec<(String, f64)> = scrape
            .samples
            .iter()
            .filter_map(|s| match s.value {
                prometheus_parse::Value::Counter(v) => {
                    Some((s.labels.get("route").unwrap_or_default().to_owned(), v))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            counted,
            vec![
                ("/products/(id)".to_owned(), 357.0),
                ("/a\\\"(b)".to_owned(), 3.0),
                ("/metrics".to_owned(), 13.0)
            ]
        );
    }
}
