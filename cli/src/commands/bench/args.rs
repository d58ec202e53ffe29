//! The `shopmesh bench` flags, and the plan they resolve to: every figure
//! left unset takes its full-run default, or its `--quick` default.

use shopmesh_shared::settings::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print the report as one JSON object (its keys are listed in
    /// docs/benchmarks.md).
    #[arg(long)]
    pub json: bool,
    /// A run of a few seconds (small counts, one round), for tests and a
    /// first look; explicit flags still win.
    #[arg(long)]
    pub quick: bool,
    /// Events through the real publish path per throughput round (default
    /// 200000; quick 5000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    pub events: Option<u64>,
    /// Background events per second while the latency probes run (default
    /// 5000; quick 500).
    #[arg(long, value_parser = rate)]
    pub rate: Option<f64>,
    /// Throughput rounds, alternating whether ours or raw goes first (default
    /// 3; quick 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: Option<u32>,
    /// Latency probes: users whose recommendations one event must change
    /// (default 200; quick 20).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub probes: Option<u32>,
    /// Probes started per second (default 20).
    #[arg(long, value_parser = rate)]
    pub probe_rate: Option<f64>,
    /// Offered `GET /recommendations/{user}` per second (default 200; quick 50).
    #[arg(long, value_parser = rate)]
    pub recommend_rate: Option<f64>,
    /// Offered `POST /orders` per second (default 50; quick 10).
    #[arg(long, value_parser = rate)]
    pub order_rate: Option<f64>,
    /// How long both HTTP rates are offered (default 20s; quick 2s).
    #[arg(long, value_parser = positive_duration)]
    pub http_duration: Option<Duration>,
    /// Shoppers (registered, logged in, each with a cart) who place the
    /// orders (default 32; quick 4).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub shoppers: Option<u32>,
    /// Products in the seeded catalogue (default 200; quick 40).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    pub catalogue: Option<u64>,
    /// Distinct users the synthetic events come from (default 10000; quick 1000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub users: Option<u64>,
    /// NATS client port of the bench's own nats-server.
    #[arg(long, default_value_t = 24222)]
    pub nats_port: u16,
    /// The user service's port; product, order and analytics follow on the next ports.
    #[arg(long, default_value_t = 18081)]
    pub http_base_port: u16,
    /// Where NATS, the databases and the logs go, kept afterwards (default: a
    /// temporary folder, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// What one run does, every figure resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub events: usize,
    pub rounds: usize,
    pub background_rate: f64,
    pub probes: usize,
    pub probe_rate: f64,
    pub recommend_rate: f64,
    pub order_rate: f64,
    pub http_duration: Duration,
    pub shoppers: u32,
    pub catalogue: usize,
    pub users: usize,
}

impl Args {
    pub fn plan(&self) -> Plan {
        let pick = |quick: u64, full: u64, set: Option<u64>| {
            set.unwrap_or(if self.quick { quick } else { full })
        };
        let pick_f = |quick: f64, full: f64, set: Option<f64>| {
            set.unwrap_or(if self.quick { quick } else { full })
        };
        Plan {
            quick: self.quick,
            events: pick(5_000, 200_000, self.events) as usize,
            rounds: pick(1, 3, self.rounds.map(u64::from)) as usize,
            background_rate: pick_f(500.0, 5_000.0, self.rate),
            probes: pick(20, 200, self.probes.map(u64::from)) as usize,
            probe_rate: pick_f(20.0, 20.0, self.probe_rate),
            recommend_rate: pick_f(50.0, 200.0, self.recommend_rate),
            order_rate: pick_f(10.0, 50.0, self.order_rate),
            http_duration: self.http_duration.unwrap_or(if self.quick {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(20)
            }),
            shoppers: pick(4, 32, self.shoppers.map(u64::from)) as u32,
            catalogue: pick(40, 200, self.catalogue) as usize,
            users: pick(1_000, 10_000, self.users) as usize,
        }
    }
}

fn rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => Ok(r),
        _ => Err(format!(
            "expected a rate per second above 0 and at most 1000000, got {text:?}"
        )),
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err("the duration must be longer than zero".into()),
        None => Err(format!(
            "expected a duration like 500ms, 20s or 2m (a whole number and a unit), got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn plan(argv: &[&str]) -> Plan {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .unwrap()
            .args
            .plan()
    }

    #[test]
    fn quick_shrinks_the_defaults_and_explicit_flags_win() {
        let full = plan(&[]);
        assert_eq!((full.events, full.rounds, full.probes), (200_000, 3, 200));
        let quick = plan(&["--quick"]);
        assert_eq!((quick.events, quick.rounds, quick.probes), (5_000, 1, 20));
        assert_eq!(quick.http_duration, Duration::from_secs(2));
        let mixed = plan(&["--quick", "--events", "700", "--rate", "250"]);
        assert_eq!((mixed.events, mixed.background_rate), (700, 250.0));
        assert!(quick.catalogue >= 2 && quick.shoppers >= 1);
    }

    #[test]
    fn bad_values_name_what_is_expected() {
        assert!(rate("0").is_err());
        assert!(rate("fast").unwrap_err().contains("rate per second"));
        assert_eq!(rate("2.5"), Ok(2.5));
        assert!(positive_duration("0s").is_err());
        assert_eq!(positive_duration("2s"), Ok(Duration::from_secs(2)));
        for argv in [
            &["--events", "5"][..],
            &["--rounds", "0"],
            &["--probes", "x"],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied())).is_err(),
                "{argv:?}"
            );
        }
    }
}
