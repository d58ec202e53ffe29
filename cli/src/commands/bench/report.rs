//! What a bench run measured, as one JSON object (`--json`) or as tables
//! for people. The keys are listed in `commands::bench`'s documentation and
//! in docs/benchmarks.md.

use super::http::{EndpointFigures, HttpFigures};
use super::memory::PeakMemory;
use super::probes::ProbeFigures;
use super::throughput::Round;
use serde::{Serialize, Serializer};
use std::fmt::Write;

/// The ratio ours / raw the platform aims at.
pub const TARGET_RATIO: f64 = 0.7;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub quick: bool,
    pub cores: usize,
    pub nats_server_version: String,
    pub partitions: u16,
    pub catalogue_products: usize,
    pub throughput: ThroughputFigures,
    pub latency: ProbeFigures,
    pub http: HttpFigures,
    /// By process name (`nats-server`, `user`, `product`, `order`, `analytics`).
    #[serde(serialize_with = "by_process")]
    pub memory: Vec<PeakMemory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputFigures {
    /// Events per round, on each side.
    pub events: usize,
    /// Distinct users the events come from.
    pub users: usize,
    /// Mean message size (header block and body), the same on both sides.
    pub message_bytes: f64,
    /// Medians over the rounds.
    pub ours_events_per_s: f64,
    pub raw_msgs_per_s: f64,
    pub ratio: f64,
    pub target_ratio: f64,
    pub rounds: Vec<Round>,
}

impl ThroughputFigures {
    pub fn new(events: usize, users: usize, message_bytes: f64, rounds: Vec<Round>) -> Self {
        let median = |pick: fn(&Round) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(pick).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or(0.0)
        };
        Self {
            events,
            users,
            message_bytes: message_bytes.round(),
            ours_events_per_s: median(|r| r.ours_events_per_s),
            raw_msgs_per_s: median(|r| r.raw_msgs_per_s),
            ratio: (median(|r| r.ratio) * 1000.0).round() / 1000.0,
            target_ratio: TARGET_RATIO,
            rounds,
        }
    }
}

fn by_process<S: Serializer>(memory: &[PeakMemory], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry {
        pid: u32,
        peak_rss_kib: u64,
    }
    serializer.collect_map(memory.iter().map(|m| {
        (
            m.process.as_str(),
            Entry {
                pid: m.pid,
                peak_rss_kib: m.peak_rss_kib,
            },
        )
    }))
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn latency_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let t = &self.throughput;
        let _ = writeln!(
            out,
            "shopmesh bench{}: {} cores, nats-server {}, {} partitions, {} products",
            if self.quick { " (quick)" } else { "" },
            self.cores,
            self.nats_server_version,
            self.partitions,
            self.catalogue_products
        );
        let _ = writeln!(
            out,
            "\nthroughput: {} events of ~{:.0} B from {} users per side and round",
            t.events, t.message_bytes, t.users
        );
        let _ = writeln!(
            out,
            "  ours: EventPublisher -> JetStream -> analytics (applied, acked)\n  \
             raw:  async-nats publish -> same stream settings -> pull consume + ack"
        );
        let _ = writeln!(
            out,
            "  {:<8} {:<6} {:>15} {:>13} {:>7}",
            "round", "first", "ours events/s", "raw msgs/s", "ratio"
        );
        for (i, r) in t.rounds.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {:<8} {:<6} {:>15} {:>13} {:>7.2}",
                i + 1,
                if r.ours_first { "ours" } else { "raw" },
                thousands(r.ours_events_per_s),
                thousands(r.raw_msgs_per_s),
                r.ratio
            );
        }
        let _ = writeln!(
            out,
            "  {:<15} {:>15} {:>13} {:>7.2}  (target >= {})",
            "median",
            thousands(t.ours_events_per_s),
            thousands(t.raw_msgs_per_s),
            t.ratio,
            t.target_ratio
        );

        let l = &self.latency;
        let _ = writeln!(
            out,
            "\npublish -> changed recommendation: {} probes at {}/s, background {} events/s \
             asked, {} achieved",
            l.probes,
            l.probe_rate,
            thousands(l.background_target_rate),
            thousands(l.background_rate)
        );
        let _ = writeln!(
            out,
            "  p50 {}   p99 {}   max {}   timeouts {}",
            latency_ms(l.latency.p50_ms),
            latency_ms(l.latency.p99_ms),
            latency_ms(l.latency.max_ms),
            l.timeouts
        );

        let h = &self.http;
        let _ = writeln!(
            out,
            "\nHTTP, open loop for {} s ({} shoppers place the orders), latency from each \
             request's due time:",
            h.duration_s, h.shoppers
        );
        let _ = writeln!(
            out,
            "  {:<34} {:>7} {:>9} {:>7} {:>10} {:>10} {:>10}",
            "endpoint", "rate/s", "requests", "errors", "p50", "p99", "max"
        );
        let row = |out: &mut String, name: &str, e: &EndpointFigures| {
            let _ = writeln!(
                out,
                "  {:<34} {:>7} {:>9} {:>7} {:>10} {:>10} {:>10}",
                name,
                e.rate,
                e.requests,
                e.errors,
                latency_ms(e.latency.p50_ms),
                latency_ms(e.latency.p99_ms),
                latency_ms(e.latency.max_ms)
            );
            for (kind, count) in &e.error_kinds {
                let _ = writeln!(out, "    {kind}: {count}");
            }
        };
        row(
            &mut out,
            "GET /recommendations/{user}?k=10",
            &h.recommendations,
        );
        row(&mut out, "POST /orders", &h.orders);

        let _ = writeln!(out, "\npeak memory (VmHWM):");
        for m in &self.memory {
            let _ = writeln!(
                out,
                "  {:<12} {:>8.1} MiB",
                m.process,
                m.peak_rss_kib as f64 / 1024.0
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_over_rounds_and_readable_numbers() {
        let round = |ours, raw| Round {
            ours_events_per_s: ours,
            raw_msgs_per_s: raw,
            ratio: ours / raw,
            ours_first: false,
        };
        let figures = ThroughputFigures::new(
            10,
            5,
            180.4,
            vec![round(30.0, 40.0), round(10.0, 50.0), round(20.0, 20.0)],
        );
        assert_eq!(figures.ours_events_per_s, 20.0);
        assert_eq!(figures.raw_msgs_per_s, 40.0);
        assert_eq!(figures.ratio, 0.75);
        assert_eq!(figures.message_bytes, 180.0);
        assert_eq!(thousands(1234567.0), "1 234 567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(latency_ms(1.234), "1.23 ms");
        assert_eq!(latency_ms(1234.0), "1.23 s");
    }
}
