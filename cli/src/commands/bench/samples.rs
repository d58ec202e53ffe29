//! Latency samples and their percentiles. A bench keeps every sample (a few
//! thousand at most), so percentiles are exact, by nearest rank: each one is
//! a latency that was measured, and p50 <= p99 <= max always holds.

use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

/// What a report shows of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn push(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn percentiles(&self) -> Percentiles {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        Percentiles {
            p50_ms: ms(nearest_rank(&sorted, 0.50)),
            p99_ms: ms(nearest_rank(&sorted, 0.99)),
            max_ms: ms(sorted.last().copied().unwrap_or_default()),
        }
    }
}

fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds with three decimals (microsecond resolution).
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_measured_values_in_order() {
        let mut samples = Samples::default();
        assert_eq!(samples.percentiles().max_ms, 0.0);
        for ms in (1..=100u64).rev() {
            samples.push(Duration::from_millis(ms));
        }
        let p = samples.percentiles();
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (50.0, 99.0, 100.0));
        let mut one = Samples::default();
        one.push(Duration::from_micros(1500));
        let p = one.percentiles();
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (1.5, 1.5, 1.5));
    }
}
