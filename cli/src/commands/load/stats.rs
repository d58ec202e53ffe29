//! What the load generator measured: per action kind a count of successes,
//! expected business refusals and errors, and a latency histogram; errors by
//! kind. Recording is lock-free (atomics) because every shopper records after
//! every action; snapshots feed the live progress line and the final summary.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Every kind of action a shopper takes, in the order the summary lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Register,
    Login,
    List,
    Search,
    View,
    Rate,
    CartAdd,
    CartRemove,
    Checkout,
    Cancel,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::Register,
        Action::Login,
        Action::List,
        Action::Search,
        Action::View,
        Action::Rate,
        Action::CartAdd,
        Action::CartRemove,
        Action::Checkout,
        Action::Cancel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Login => "login",
            Action::List => "list",
            Action::Search => "search",
            Action::View => "view",
            Action::Rate => "rate",
            Action::CartAdd => "cart_add",
            Action::CartRemove => "cart_remove",
            Action::Checkout => "checkout",
            Action::Cancel => "cancel",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A refusal the business expects under load (a checkout of stock that
    /// ran out): counted apart from errors.
    OutOfStock,
    /// Anything else: its kind, e.g. `http 503` or `timeout`.
    Error(String),
}

/// Latencies in microseconds, log-linear: 32 linear steps per power of two,
/// so any percentile read back is within ~3% of the truth, in fixed memory.
struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

fn bucket_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let exponent = 63 - u64::from(micros.leading_zeros());
    let sub = (micros >> (exponent - u64::from(SUB_BITS))) & (SUB - 1);
    ((exponent - u64::from(SUB_BITS) + 1) * SUB + sub) as usize
}

/// The middle of a bucket, in microseconds.
fn bucket_value(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let exponent = index / SUB - 1 + u64::from(SUB_BITS);
    let sub = index % SUB;
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    (SUB + sub) * width + width / 2
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(micros)].fetch_add(1, Relaxed);
        self.max.fetch_max(micros, Relaxed);
    }
}

/// A copy of a histogram's counts, which can be merged and queried.
#[derive(Clone)]
pub struct Latencies {
    counts: Vec<u64>,
    max_micros: u64,
}

impl Latencies {
    pub fn empty() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            max_micros: 0,
        }
    }

    pub fn merge(&mut self, other: &Latencies) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency below which `q` (0..=1) of the samples fall; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(bucket_value(index).min(self.max_micros));
            }
        }
        Duration::from_micros(self.max_micros)
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros)
    }
}

struct Counters {
    ok: AtomicU64,
    out_of_stock: AtomicU64,
    errors: AtomicU64,
    latency: Histogram,
}

/// Shared by every shopper for the whole run.
pub struct Stats {
    per_action: Vec<Counters>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            per_action: Action::ALL
                .iter()
                .map(|_| Counters {
                    ok: AtomicU64::new(0),
                    out_of_stock: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    latency: Histogram::new(),
                })
                .collect(),
            errors: Mutex::new(BTreeMap::new()),
        }
    }
}

/// One action kind's figures at one moment.
#[derive(Clone)]
pub struct ActionSnapshot {
    pub action: Action,
    pub ok: u64,
    pub out_of_stock: u64,
    pub errors: u64,
    pub latency: Latencies,
}

impl ActionSnapshot {
    pub fn count(&self) -> u64 {
        self.ok + self.out_of_stock + self.errors
    }
}

#[derive(Clone)]
pub struct Snapshot {
    pub actions: Vec<ActionSnapshot>,
    pub errors: BTreeMap<String, u64>,
}

impl Snapshot {
    pub fn total(&self) -> u64 {
        self.actions.iter().map(ActionSnapshot::count).sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.actions.iter().map(|a| a.errors).sum()
    }

    pub fn out_of_stock(&self) -> u64 {
        self.actions.iter().map(|a| a.out_of_stock).sum()
    }

    pub fn latency(&self) -> Latencies {
        let mut all = Latencies::empty();
        for action in &self.actions {
            all.merge(&action.latency);
        }
        all
    }

    /// Actions of the kinds in `kinds` only.
    pub fn count_of(&self, kinds: &[Action]) -> u64 {
        self.actions
            .iter()
            .filter(|a| kinds.contains(&a.action))
            .map(ActionSnapshot::count)
            .sum()
    }
}

impl Stats {
    pub fn record(&self, action: Action, latency: Duration, outcome: Outcome) {
        let counters = &self.per_action[action.index()];
        counters.latency.record(latency);
        match outcome {
            Outcome::Ok => counters.ok.fetch_add(1, Relaxed),
            Outcome::OutOfStock => counters.out_of_stock.fetch_add(1, Relaxed),
            Outcome::Error(kind) => {
                // Errors are rare; a lock here costs nothing on the happy path.
                *self
                    .errors
                    .lock()
                    .expect("errors lock")
                    .entry(format!("{} {kind}", action.name()))
                    .or_default() += 1;
                counters.errors.fetch_add(1, Relaxed)
            }
        };
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            actions: Action::ALL
                .iter()
                .zip(&self.per_action)
                .map(|(&action, c)| ActionSnapshot {
                    action,
                    ok: c.ok.load(Relaxed),
                    out_of_stock: c.out_of_stock.load(Relaxed),
                    errors: c.errors.load(Relaxed),
                    latency: Latencies {
                        counts: c.latency.buckets.iter().map(|b| b.load(Relaxed)).collect(),
                        max_micros: c.latency.max.load(Relaxed),
                    },
                })
                .collect(),
            errors: self.errors.lock().expect("errors lock").clone(),
        }
    }
}

/// Milliseconds with three decimals, for JSON.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A latency for people: `850us`, `4.2ms`, `1.30s`.
pub fn human(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros}us")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1e3)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// What the run was asked to do and how long its phases took.
pub struct RunInfo {
    pub shoppers: u32,
    pub signed_up: u64,
    pub target_rate: f64,
    pub duration: Duration,
    pub think_time: Duration,
    pub seed: u64,
    pub catalogue: usize,
    pub signup_elapsed: Duration,
    /// The paced phase: from its start until its last action finished.
    pub run_elapsed: Duration,
    /// Actions of the paced phase (everything but sign-up).
    pub run_actions: u64,
    pub interrupted: bool,
}

impl RunInfo {
    pub fn achieved_rate(&self) -> f64 {
        self.run_actions as f64 / self.run_elapsed.as_secs_f64().max(1e-9)
    }
}

pub fn summary_json(info: &RunInfo, snapshot: &Snapshot) -> Value {
    let actions: serde_json::Map<String, Value> = snapshot
        .actions
        .iter()
        .map(|a| {
            (
                a.action.name().to_owned(),
                json!({
                    "count": a.count(),
                    "ok": a.ok,
                    "out_of_stock": a.out_of_stock,
                    "errors": a.errors,
                    "p50_ms": ms(a.latency.quantile(0.50)),
                    "p90_ms": ms(a.latency.quantile(0.90)),
                    "p99_ms": ms(a.latency.quantile(0.99)),
                    "max_ms": ms(a.latency.max()),
                }),
            )
        })
        .collect();
    let all = snapshot.latency();
    json!({
        "shoppers": info.shoppers,
        "signed_up": info.signed_up,
        "catalogue_products": info.catalogue,
        "seed": info.seed,
        "target_rate": info.target_rate,
        "duration_s": info.duration.as_secs_f64(),
        "think_time_ms": ms(info.think_time),
        "interrupted": info.interrupted,
        "signup_elapsed_s": info.signup_elapsed.as_secs_f64(),
        "run_elapsed_s": info.run_elapsed.as_secs_f64(),
        "run_actions": info.run_actions,
        "achieved_rate": (info.achieved_rate() * 10.0).round() / 10.0,
        "total_actions": snapshot.total(),
        "p50_ms": ms(all.quantile(0.50)),
        "p99_ms": ms(all.quantile(0.99)),
        "actions": actions,
        "out_of_stock": snapshot.out_of_stock(),
        "unexpected_errors": snapshot.total_errors(),
        "errors": snapshot.errors,
    })
}

pub fn summary_text(info: &RunInfo, snapshot: &Snapshot) -> String {
    let mut out = String::new();
    out += &format!(
        "shopmesh load: {} shoppers over {} products, target {} actions/s for {:?}, think time {}, seed {}{}\n",
        info.shoppers,
        info.catalogue,
        info.target_rate,
        info.duration,
        human(info.think_time),
        info.seed,
        if info.interrupted {
            " (interrupted)"
        } else {
            ""
        },
    );
    out += &format!(
        "sign-up: {} of {} shoppers registered and logged in, in {:.2}s\n",
        info.signed_up,
        info.shoppers,
        info.signup_elapsed.as_secs_f64()
    );
    out += &format!(
        "run: {} actions in {:.2}s = {:.1} actions/s\n\n",
        info.run_actions,
        info.run_elapsed.as_secs_f64(),
        info.achieved_rate()
    );
    out += &format!(
        "{:<12} {:>9} {:>9} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
        "action", "count", "ok", "no-stock", "errors", "p50", "p90", "p99", "max"
    );
    for a in &snapshot.actions {
        out += &format!(
            "{:<12} {:>9} {:>9} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
            a.action.name(),
            a.count(),
            a.ok,
            a.out_of_stock,
            a.errors,
            human(a.latency.quantile(0.50)),
            human(a.latency.quantile(0.90)),
            human(a.latency.quantile(0.99)),
            human(a.latency.max()),
        );
    }
    let all = snapshot.latency();
    out += &format!(
        "{:<12} {:>9} {:>9} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}\n",
        "all",
        snapshot.total(),
        snapshot.actions.iter().map(|a| a.ok).sum::<u64>(),
        snapshot.out_of_stock(),
        snapshot.total_errors(),
        human(all.quantile(0.50)),
        human(all.quantile(0.90)),
        human(all.quantile(0.99)),
        human(all.max()),
    );
    out += "\n";
    if snapshot.errors.is_empty() {
        out += "errors: none\n";
    } else {
        out += "errors:\n";
        for (kind, count) in &snapshot.errors {
            out += &format!("  {kind}: {count}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_three_percent() {
        for micros in [
            0u64, 1, 31, 32, 33, 100, 999, 1_000, 12_345, 987_654, 60_000_000,
        ] {
            let back = bucket_value(bucket_of(micros));
            let error = (back as f64 - micros as f64).abs() / (micros.max(1) as f64);
            assert!(error <= 0.032, "{micros} -> {back}");
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_and_outcomes_are_counted() {
        let stats = Stats::default();
        for ms in 1..=100u64 {
            stats.record(Action::View, Duration::from_millis(ms), Outcome::Ok);
        }
        stats.record(
            Action::Checkout,
            Duration::from_millis(5),
            Outcome::OutOfStock,
        );
        stats.record(
            Action::Checkout,
            Duration::from_millis(5),
            Outcome::Error("http 503".into()),
        );
        let snap = stats.snapshot();
        let view = &snap.actions[Action::View.index()];
        assert_eq!(view.count(), 100);
        let p50 = view.latency.quantile(0.5).as_secs_f64() * 1e3;
        assert!((48.0..=52.0).contains(&p50), "{p50}");
        let p99 = view.latency.quantile(0.99).as_secs_f64() * 1e3;
        assert!((96.0..=100.0).contains(&p99), "{p99}");
        assert_eq!(snap.total(), 102);
        assert_eq!(snap.out_of_stock(), 1);
        assert_eq!(snap.total_errors(), 1);
        assert_eq!(snap.errors.get("checkout http 503"), Some(&1));
    }
}
