//! The shared pacer: hands out action slots at the target rate to whichever
//! shopper asks, so the total rate is what was asked for however many
//! shoppers there are. Open loop: a slot's time does not move because the
//! services are slow; a backlog is only allowed to build up to a small
//! burst, so a stall is not followed by an unbounded flood.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Pacer {
    start: Instant,
    /// Nanoseconds between two slots.
    interval: u64,
    /// The next free slot, in nanoseconds after `start`.
    next: AtomicU64,
    /// How far behind the clock the next slot may fall.
    burst: u64,
    /// No slot at or after this (nanoseconds after `start`).
    end: u64,
    stopped: AtomicBool,
}

impl Pacer {
    pub fn new(rate: f64, duration: Duration) -> Self {
        let interval = (1e9 / rate).max(1.0) as u64;
        Self {
            start: Instant::now(),
            interval,
            next: AtomicU64::new(0),
            // 50 ms of slots, and at least one.
            burst: interval.max(50_000_000),
            end: u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
            stopped: AtomicBool::new(false),
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Ends the run early (Ctrl-C): no more slots.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn elapsed(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Waits `pause` (the shopper's think time), then for a free slot; one
    /// sleep for both, since timers are a real share of the generator's cost
    /// at thousands of actions per second. `false` once the run is over.
    pub async fn acquire_after(&self, pause: Duration) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let ready = self
            .elapsed()
            .saturating_add(u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX));
        let slot = self.take(ready);
        if slot >= self.end {
            return false;
        }
        let at = slot.max(ready);
        let now = self.elapsed();
        if at > now {
            tokio::time::sleep(Duration::from_nanos(at - now)).await;
        }
        !self.stopped.load(Ordering::Relaxed)
    }

    /// The slot for a caller ready at `ready`, advancing the schedule by one
    /// interval. Slots owed from before `ready - burst` are forgiven.
    fn take(&self, ready: u64) -> u64 {
        let floor = ready.saturating_sub(self.burst);
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            let slot = current.max(floor);
            match self.next.compare_exchange_weak(
                current,
                slot + self.interval,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return slot,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_rate_and_a_backlog_is_capped() {
        let pacer = Pacer::new(1000.0, Duration::from_secs(10));
        // Ten callers at once get ten slots 1 ms apart.
        let slots: Vec<u64> = (0..10).map(|_| pacer.take(0)).collect();
        assert_eq!(slots, (0..10).map(|i| i * 1_000_000).collect::<Vec<_>>());
        // After a 1 s stall, at most 50 ms of slots are owed, not 990.
        let late = pacer.take(1_000_000_000);
        assert_eq!(late, 950_000_000);
        assert_eq!(pacer.take(1_000_000_000), 951_000_000);
    }
}
