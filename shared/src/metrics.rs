//! Prometheus metrics of a process, served at `/metrics` in the text format
//! (0.0.4) by every service's HTTP server. One registry per process,
//! created on first use; libraries record into it, `render` writes it out.
//!
//! Names follow Prometheus conventions: `shopmesh_` prefix, base units
//! (seconds), `_total` for counters.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::OnceLock;

/// Every metric shopmesh records.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by method, route pattern and status code.
    pub http_requests: IntCounterVec,
    /// HTTP request duration by method and route pattern.
    pub http_duration: HistogramVec,
    /// Events stored by the stream, by type.
    pub events_published: IntCounterVec,
    /// Events the server already had (duplicate message id), by type.
    pub events_duplicate: IntCounterVec,
    /// Publishes that failed for good, by type.
    pub events_publish_failed: IntCounterVec,
    /// Behaviour events dropped, by reason (`buffer_full`, `publish_failed`).
    pub behaviour_dropped: IntCounterVec,
    /// Reads a cache answered (`hit`) or passed to the database (`miss`),
    /// by cache (the product service's `product` and `listing`).
    pub cache_lookups: IntCounterVec,
    /// Outbox rows not yet published.
    pub outbox_backlog: IntGauge,
    /// Stock reservations of failed checkouts not yet given back (the order
    /// service's `pending_releases`).
    pub pending_releases: IntGauge,
    /// Messages handled by a consumer, by outcome (`handled`, `nakked`,
    /// `dead_lettered`, `skipped_newer`).
    pub consumer_messages: IntCounterVec,
    /// Messages waiting for a consumer, by partition (the server's
    /// num_pending at the last delivery).
    pub consumer_lag: IntGaugeVec,
    /// Partition consumers restarted from their handler's position because
    /// deliveries were lost on the way (a skipped consumer sequence), by
    /// partition.
    pub consumer_restarts: IntCounterVec,
    /// Time from the request to the answer of a recommendation query.
    pub recommendation_duration: Histogram,
    /// Time a write waited for its turn at the service's write queue
    /// (SQLite only; see `db_writes`).
    pub db_write_wait: Histogram,
    /// Deliveries sent to a partition actor and not yet applied, by
    /// partition: its mailbox depth as the consumer sees it.
    pub actor_mailbox: IntGaugeVec,
    /// Unix time of a partition's last snapshot, by partition (age in
    /// PromQL: `time() - shopmesh_snapshot_timestamp_seconds`).
    pub snapshot_timestamp: IntGaugeVec,
    /// Size of a partition's last snapshot, by partition.
    pub snapshot_bytes: IntGaugeVec,
}

/// Latency buckets from 0.5 ms to 5 s: our requests live in milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let http_requests = counter(
            "shopmesh_http_requests_total",
            "HTTP requests by method, route and status code",
            &["method", "route", "status"],
        );
        let events_published = counter(
            "shopmesh_events_published_total",
            "Events stored by the events stream, by type",
            &["type"],
        );
        let events_duplicate = counter(
            "shopmesh_events_duplicate_total",
            "Publishes the stream dropped as duplicates (same message id), by type",
            &["type"],
        );
        let events_publish_failed = counter(
            "shopmesh_events_publish_failed_total",
            "Publishes that failed after every retry, by type",
            &["type"],
        );
        let behaviour_dropped = counter(
            "shopmesh_behaviour_events_dropped_total",
            "Behaviour events dropped, by reason",
            &["reason"],
        );
        let cache_lookups = counter(
            "shopmesh_cache_lookups_total",
            "Reads a cache answered (hit) or passed to the database (miss), by cache",
            &["cache", "result"],
        );
        let consumer_messages = counter(
            "shopmesh_consumer_messages_total",
            "Messages a consumer finished with, by outcome",
            &["outcome"],
        );
        let consumer_restarts = counter(
            "shopmesh_consumer_restarts_total",
            "Partition consumers restarted from the handler's position after deliveries were lost on the way",
            &["partition"],
        );
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "shopmesh_http_request_duration_seconds",
                "HTTP request duration by method and route",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("valid metric");
        let http_duration = register(&registry, http_duration);
        let outbox_backlog =
            IntGauge::new("shopmesh_outbox_backlog", "Outbox rows not yet published")
                .expect("valid metric");
        let outbox_backlog = register(&registry, outbox_backlog);
        let pending_releases = IntGauge::new(
            "shopmesh_pending_releases",
            "Stock reservations of failed checkouts not yet given back",
        )
        .expect("valid metric");
        let pending_releases = register(&registry, pending_releases);
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "shopmesh_consumer_lag",
                "Messages waiting for a partition's consumer",
            ),
            &["partition"],
        )
        .expect("valid metric");
        let consumer_lag = register(&registry, consumer_lag);
        let latency = |name: &str, help: &str| {
            register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            )
        };
        let recommendation_duration = latency(
            "shopmesh_recommendation_duration_seconds",
            "Time to answer a recommendation query",
        );
        let db_write_wait = latency(
            "shopmesh_db_write_wait_seconds",
            "Time a write waited for its turn at the service's SQLite write queue",
        );
        let by_partition = |name: &str, help: &str| {
            register(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), &["partition"]).expect("valid metric"),
            )
        };
        let actor_mailbox = by_partition(
            "shopmesh_actor_mailbox_depth",
            "Deliveries sent to a partition actor and not yet applied",
        );
        let snapshot_timestamp = by_partition(
            "shopmesh_snapshot_timestamp_seconds",
            "Unix time of a partition's last snapshot",
        );
        let snapshot_bytes = by_partition(
            "shopmesh_snapshot_bytes",
            "Size of a partition's last snapshot in bytes",
        );
        Self {
            actor_mailbox,
            snapshot_timestamp,
            snapshot_bytes,
            registry,
            http_requests,
            http_duration,
            events_published,
            events_duplicate,
            events_publish_failed,
            behaviour_dropped,
            cache_lookups,
            outbox_backlog,
            pending_releases,
            consumer_messages,
            consumer_lag,
            consumer_restarts,
            recommendation_duration,
            db_write_wait,
        }
    }

    /// Every metric, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into memory cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// Registers `metric` in `registry` and hands it back.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_show_up_in_the_text_format() {
        let m = metrics();
        m.events_published
            .with_label_values(&["order.placed"])
            .inc();
        m.http_duration
            .with_label_values(&["GET", "/products/{id}"])
            .observe(0.002);
        let text = m.render();
        assert!(
            text.contains("shopmesh_events_published_total{type=\"order.placed\"}"),
            "{text}"
        );
        assert!(
            text.contains("shopmesh_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE shopmesh_outbox_backlog gauge"),
            "{text}"
        );
    }
}
