//! Sliding-window counters: up to 60 buckets per window, keyed by EVENT time
//! and read against the [`Clock`](crate::clock::Clock)'s "now". Buckets older
//! than the window are dropped when a newer one is added and ignored when
//! read, so nothing needs a timer to roll the windows and memory is bounded.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Buckets per window: the window's resolution is a 60th of its length.
pub const BUCKETS: usize = 60;

/// The sliding windows the service keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WindowKind {
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "24h")]
    Day,
}

impl WindowKind {
    pub const ALL: [WindowKind; 3] = [WindowKind::OneMinute, WindowKind::OneHour, WindowKind::Day];

    pub const fn length_ms(self) -> i64 {
        match self {
            WindowKind::OneMinute => 60_000,
            WindowKind::OneHour => 3_600_000,
            WindowKind::Day => 86_400_000,
        }
    }

    pub const fn bucket_ms(self) -> i64 {
        self.length_ms() / BUCKETS as i64
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "1m" => Some(WindowKind::OneMinute),
            "1h" => Some(WindowKind::OneHour),
            "24h" => Some(WindowKind::Day),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            WindowKind::OneMinute => "1m",
            WindowKind::OneHour => "1h",
            WindowKind::Day => "24h",
        }
    }
}

/// What is counted per product (all time, and per bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub views: u64,
    pub cart_adds: u64,
    /// Quantity purchased (sum of order line quantities).
    pub purchases: u64,
    /// Quantity of those purchases cancelled since (counted when cancelled).
    pub cancelled: u64,
    pub rating_count: u64,
    pub rating_sum: u64,
}

/// Trending weights: a cart add says more than a view, a purchase most.
pub const VIEW_WEIGHT: u64 = 1;
pub const CART_WEIGHT: u64 = 3;
pub const PURCHASE_WEIGHT: u64 = 5;

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.views += other.views;
        self.cart_adds += other.cart_adds;
        self.purchases += other.purchases;
        self.cancelled += other.cancelled;
        self.rating_count += other.rating_count;
        self.rating_sum += other.rating_sum;
    }

    /// views + 3 * cart adds + 5 * purchases that were not cancelled.
    pub fn activity_score(&self) -> u64 {
        self.views * VIEW_WEIGHT
            + self.cart_adds * CART_WEIGHT
            + self.net_purchases() * PURCHASE_WEIGHT
    }

    /// Purchases less cancellations. In a window a cancellation can land in
    /// a later bucket than its order, so this saturates at zero.
    pub fn net_purchases(&self) -> u64 {
        self.purchases.saturating_sub(self.cancelled)
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    id: i64,
    counters: Counters,
}

/// One sliding window: only the non-empty buckets of the last
/// [`BUCKETS`], oldest first, so a product seen once costs one bucket, not 60.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    buckets: VecDeque<Bucket>,
}

impl Window {
    /// Adds to the bucket of `at_ms` (event time). Buckets that fell out of
    /// the window behind the newest one are dropped; an event already out of
    /// the window is not recorded.
    pub fn record(&mut self, kind: WindowKind, at_ms: i64, update: impl FnOnce(&mut Counters)) {
        let id = at_ms.div_euclid(kind.bucket_ms());
        match self.buckets.back_mut() {
            Some(last) if last.id == id => update(&mut last.counters),
            Some(last) if last.id > id => {
                // Out of order (rare): find or insert its bucket.
                if id <= last.id - BUCKETS as i64 {
                    return;
                }
                match self.buckets.binary_search_by_key(&id, |b| b.id) {
                    Ok(i) => update(&mut self.buckets[i].counters),
                    Err(i) => {
                        let mut counters = Counters::default();
                        update(&mut counters);
                        self.buckets.insert(i, Bucket { id, counters });
                    }
                }
            }
            _ => {
                let mut counters = Counters::default();
                update(&mut counters);
                self.buckets.push_back(Bucket { id, counters });
                while self
                    .buckets
                    .front()
                    .is_some_and(|b| b.id <= id - BUCKETS as i64)
                {
                    self.buckets.pop_front();
                }
            }
        }
    }

    /// The counters of the buckets inside the window ending at `now_ms`
    /// (events stamped in the future, from skewed clocks, are counted too).
    pub fn sum(&self, kind: WindowKind, now_ms: i64) -> Counters {
        let oldest = now_ms.div_euclid(kind.bucket_ms()) - BUCKETS as i64;
        let mut total = Counters::default();
        for bucket in self.buckets.iter().rev().take_while(|b| b.id > oldest) {
            total.add(&bucket.counters);
        }
        total
    }

    /// Buckets held (for size estimates).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use proptest::prelude::*;
    use std::time::Duration;

    fn view(c: &mut Counters) {
        c.views += 1;
    }

    #[tokio::test(start_paused = true)]
    async fn windows_expire_as_the_clock_advances() {
        let clock = Clock::starting_at(1_764_072_000_000);
        let mut windows = [Window::default(), Window::default(), Window::default()];
        for kind in WindowKind::ALL {
            windows[kind.index()].record(kind, clock.now_ms(), view);
        }
        let views = |windows: &[Window; 3], kind: WindowKind| {
            windows[kind.index()].sum(kind, clock.now_ms()).views
        };
        assert_eq!(views(&windows, WindowKind::OneMinute), 1);

        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(views(&windows, WindowKind::OneMinute), 1);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(views(&windows, WindowKind::OneMinute), 0);
        assert_eq!(views(&windows, WindowKind::OneHour), 1);

        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(views(&windows, WindowKind::OneHour), 0);
        assert_eq!(views(&windows, WindowKind::Day), 1);

        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert_eq!(views(&windows, WindowKind::Day), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn old_buckets_are_dropped_and_late_events_kept_inside_the_window() {
        let clock = Clock::starting_at(0);
        let kind = WindowKind::OneMinute;
        let mut window = Window::default();
        window.record(kind, clock.now_ms(), view);
        tokio::time::advance(Duration::from_secs(60)).await;
        // One lap later: the old bucket is dropped, not leaked in.
        window.record(kind, clock.now_ms(), view);
        assert_eq!(window.sum(kind, clock.now_ms()).views, 1);
        assert_eq!(window.len(), 1);
        // An event older than the window is not recorded.
        window.record(kind, 0, view);
        assert_eq!(window.sum(kind, clock.now_ms()).views, 1);
        // A late event inside the window is.
        window.record(kind, clock.now_ms() - 30_000, view);
        assert_eq!(window.sum(kind, clock.now_ms()).views, 2);
        assert_eq!(window.len(), 2);
    }

    #[test]
    fn the_score_weights_views_carts_and_purchases() {
        let c = Counters {
            views: 2,
            cart_adds: 1,
            purchases: 3,
            ..Counters::default()
        };
        assert_eq!(c.activity_score(), 2 + 3 + 15);
        let after_cancel = Counters { cancelled: 2, ..c };
        assert_eq!(after_cancel.activity_score(), 2 + 3 + 5);
        let more_cancelled = Counters { cancelled: 9, ..c };
        assert_eq!(more_cancelled.net_purchases(), 0);
    }

    proptest! {
        /// The query parameter and the JSON value are the same three names.
        #[test]
        fn window_names_parse_exactly_and_round_trip_through_serde(text in prop_oneof![
            prop::sample::select(vec!["1m", "1h", "24h", "1M", "1d", " 1h", "24h\n", ""])
                .prop_map(String::from),
            "[0-9a-z]{0,4}",
        ]) {
            let text = text.as_str();
            let kind = WindowKind::parse(text);
            prop_assert_eq!(kind.is_some(), ["1m", "1h", "24h"].contains(&text));
            let from_json = serde_json::from_value::<WindowKind>(serde_json::json!(text)).ok();
            prop_assert_eq!(from_json, kind);
            if let Some(kind) = kind {
                prop_assert_eq!(kind.as_str(), text);
                prop_assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(text));
            }
        }
    }
}
