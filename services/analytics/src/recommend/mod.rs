//! The real-time recommender. It has no model of its own: it reads what the
//! partition actors keep up to date on every event (each user's last distinct
//! products, the bounded item co-occurrence, per-product touch weights and
//! windowed activity, the catalogue's stock), so the next answer already
//! reflects the event just applied.
//!
//! Scoring, for a user with history `H` (the last `cooccurrence_window`
//! distinct products, newest first):
//!
//! ```text
//! w(h)      = decay^position(h) * preference(latest interaction with h)
//! sim(h, j) = co(h, j) / sqrt(n(h) * n(j))          (cosine over touch weights)
//! score(j)  = sum over h in H of w(h) * sim(h, j)
//! ```
//!
//! `preference` is view 1 < cart 3 < purchase 5, and a rating weighs its
//! stars (1 like a view, 5 like a purchase). The co-occurrence counts and the
//! touch weights `n` are split over the partitions; `sim` only needs their
//! sums, so each partition returns `sum_h w(h)/sqrt(n(h)) * co_p(h, j)` and its
//! own `n_p(j)`, and [`pipeline`] adds them up (one instance holding every
//! partition answers exactly what a single state would).
//!
//! Then: drop products the user bought or has in `H`, products the catalogue
//! does not know or has out of stock; keep at most a share of `k` per
//! category while others are available (diversity); fill up with trending
//! products (last 24 h, then all time) when there are fewer than `k`.
//!
//! The defaults were fixed by rules, not tuned to a figure: the history
//! window is the co-occurrence window the aggregates already keep (10, the
//! smallest within 2% of 20 on MovieLens, see `AggregateSettings`),
//! the decay halves a product's weight about every 7 positions (0.9), and the
//! event weights are the ones the aggregates use everywhere.

pub mod pipeline;
pub mod rank;
pub mod score;
pub mod seeds;

pub use pipeline::{Shards, recommend, similar};
pub use rank::{Recommendation, Source};
pub use score::{CatalogueEntry, PartialScore, PopularProduct};
pub use seeds::{Seed, UserSeeds};

/// Query-time knobs of the recommender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecommenderSettings {
    /// `SHOPMESH_RECOMMEND_HISTORY_DECAY`, default 0.9: weight of the n-th
    /// newest product in the history is `decay^n`.
    pub history_decay: f64,
    /// `SHOPMESH_RECOMMEND_CATEGORY_SHARE`, default 0.5: at most this share
    /// of the `k` answers from one category while others are available.
    pub category_share: f64,
}

impl Default for RecommenderSettings {
    fn default() -> Self {
        Self {
            history_decay: 0.9,
            category_share: 0.5,
        }
    }
}
