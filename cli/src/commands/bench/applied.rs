//! How far the analytics service has got: the messages its consumer has
//! finished with, read from its `/metrics` counter
//! (`shopmesh_consumer_messages_total`, by outcome). Not `/stats`: that
//! asks NATS for every partition consumer's info (about a hundred requests
//! per call), which would compete with the throughput it watches.

use anyhow::{Context, bail};
use async_nats::jetstream;
use shopmesh_shared::nats::stored_event_count;
use shopmesh_shared::settings::StreamSettings;
use std::time::{Duration, Instant};

const COUNTER: &str = "shopmesh_consumer_messages_total";

/// Outcomes after which a message is done with: applied, or set aside for
/// good (a nak'ed message comes back, so it does not count).
const FINISHED: [&str; 3] = ["handled", "dead_lettered", "skipped_newer"];

/// The counter's value for `outcome` in a Prometheus text scrape (0 before
/// the first such message).
fn outcome_count(scrape: &str, outcome: &str) -> u64 {
    let series = format!("{COUNTER}{{outcome=\"{outcome}\"}}");
    scrape
        .lines()
        .filter_map(|line| line.strip_prefix(series.as_str()))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .next()
        .unwrap_or(0)
}

async fn scrape(http: &reqwest::Client, analytics: &str) -> anyhow::Result<String> {
    let url = format!("{analytics}/metrics");
    http.get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?
        .text()
        .await
        .with_context(|| format!("GET {url}"))
}

/// Events analytics has applied since it started.
pub async fn handled(http: &reqwest::Client, analytics: &str) -> anyhow::Result<u64> {
    Ok(outcome_count(&scrape(http, analytics).await?, "handled"))
}

/// Waits until analytics has applied `target` events, polling every
/// `every`; fails after `deadline`.
pub async fn wait_handled(
    http: &reqwest::Client,
    analytics: &str,
    target: u64,
    every: Duration,
    deadline: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let seen = handled(http, analytics).await?;
        if seen >= target {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("analytics applied {seen} of {target} events within {deadline:?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits until the events streams hold at least `at_least` messages and
/// analytics has finished with every one of them: nothing earlier is still
/// in flight when a measurement starts.
pub async fn settle(
    js: &jetstream::Context,
    streams: &StreamSettings,
    http: &reqwest::Client,
    analytics: &str,
    at_least: u64,
    deadline: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let stored = stored_event_count(js, streams).await?;
        let text = scrape(http, analytics).await?;
        let finished: u64 = FINISHED.iter().map(|o| outcome_count(&text, o)).sum();
        if stored >= at_least && finished >= stored {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!(
                "analytics did not catch up within {deadline:?}: the stream holds {stored} \
                 messages (at least {at_least} expected), analytics finished with {finished}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_read_by_outcome() {
        let scrape = "# HELP shopmesh_consumer_messages_total Messages\n\
                      # TYPE shopmesh_consumer_messages_total counter\n\
                      shopmesh_consumer_messages_total{outcome=\"handled\"} 12345\n\
                      shopmesh_consumer_messages_total{outcome=\"nakked\"} 2\n\
                      shopmesh_events_published_total{type=\"product.viewed\"} 7\n";
        assert_eq!(outcome_count(scrape, "handled"), 12345);
        assert_eq!(outcome_count(scrape, "nakked"), 2);
        assert_eq!(outcome_count(scrape, "dead_lettered"), 0);
    }
}
