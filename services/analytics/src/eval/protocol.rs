//! The two evaluation protocols (engineering guide, section 4), each scoring
//! the recommender and a popularity baseline computed here.
//!
//! - Offline: per user, ratings sorted by time (file order breaks ties); the
//!   last `max(1, round(0.2 n))` are the test items. The training ratings of
//!   every user are replayed in global time order through
//!   `PartitionState::apply`; then each user's top 10, excluding the user's
//!   training items, is compared with the test items.
//! - Prequential: every rating is replayed in global time order; for each
//!   one in the last 20% whose item the user has not had, the top 10
//!   (excluding items had) is asked for first and scored, then the rating is
//!   applied. The popularity peer is frozen at the 80% cut, like a batch
//!   model trained there and never updated.

use super::dataset::{Dataset, Rating};
use super::local::LocalShards;
use super::metrics::{Accumulator, K, Metrics};
use crate::hash::{FastMap, FastSet};
use crate::items::ItemGraph;
use crate::recommend::pipeline::Request;
use crate::recommend::{RecommenderSettings, recommend};
use crate::settings::AggregateSettings;
use crate::state::PartitionState;
use serde::Serialize;
use shopmesh_shared::events::{
    Category, Event, EventId, EventMeta, ProductId, ProductRated, Timestamp, UserId,
};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Offline,
    Prequential,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub mode: Mode,
    pub hr10: f64,
    pub ndcg10: f64,
    pub recall10: f64,
    pub popularity: Metrics,
    /// Wall time of the whole evaluation, replay included.
    pub seconds: f64,
    /// Prequential only: events asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_scored: Option<u64>,
    pub users: usize,
    pub ratings: usize,
}

/// Replays `dataset` under `mode` with the service's default settings;
/// `progress(done, total)` is called now and then.
pub fn evaluate(
    dataset: &Dataset,
    mode: Mode,
    aggregates: &AggregateSettings,
    recommender: &RecommenderSettings,
    progress: &mut dyn FnMut(u64, u64),
) -> EvalReport {
    let start = Instant::now();
    let replay = Replay {
        aggregates,
        recommender,
        state: PartitionState::default(),
        items: ItemGraph::default(),
        sequence: 0,
        now_ms: 0,
        category: Category::parse("movies").expect("a valid category"),
    };
    let (ours, popularity, scored) = match mode {
        Mode::Offline => offline(dataset, replay, progress),
        Mode::Prequential => prequential(dataset, replay, progress),
    };
    let metrics = ours.metrics();
    let users: FastSet<u32> = dataset.ratings.iter().map(|r| r.user).collect();
    EvalReport {
        mode,
        hr10: metrics.hr10,
        ndcg10: metrics.ndcg10,
        recall10: metrics.recall10,
        popularity: popularity.metrics(),
        seconds: start.elapsed().as_secs_f64(),
        events_scored: (mode == Mode::Prequential).then_some(scored),
        users: users.len(),
        ratings: dataset.ratings.len(),
    }
}

pub fn user_id(user: u32) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(u128::from(user)))
}

pub fn product_id(item: u32) -> ProductId {
    ProductId::from_uuid(uuid::Uuid::from_u128(u128::from(item)))
}

/// The state being replayed into, and how to ask it.
struct Replay<'a> {
    aggregates: &'a AggregateSettings,
    recommender: &'a RecommenderSettings,
    state: PartitionState,
    items: ItemGraph,
    sequence: u64,
    now_ms: i64,
    category: Category,
}

impl Replay<'_> {
    fn apply(&mut self, rating: &Rating) {
        self.sequence += 1;
        self.now_ms = self.now_ms.max(rating.at_s * 1000);
        let event = Event::new(
            EventMeta {
                event_id: EventId::new_v7(),
                occurred_at: Timestamp::from_millis(rating.at_s * 1000),
                producer: "eval".into(),
                user_id: Some(user_id(rating.user)),
            },
            ProductRated {
                product_id: product_id(rating.item),
                category: self.category.clone(),
                stars: rating.stars,
            },
        );
        self.state
            .apply_with(self.sequence, &event, self.aggregates, &mut &self.items);
    }

    fn top(&self, user: u32, had: &FastSet<ProductId>) -> Vec<ProductId> {
        let shards = LocalShards {
            states: vec![&self.state],
            items: &self.items,
            settings: *self.recommender,
            now_ms: self.now_ms,
        };
        let request = Request {
            k: K,
            exclude: had.clone(),
            require_catalogue: false,
        };
        // Every future of the local shards is ready at once.
        futures::executor::block_on(recommend(&shards, user_id(user), request, self.recommender))
            .expect("local reads do not fail")
            .into_iter()
            .map(|r| r.product_id)
            .collect()
    }
}

/// Ratings in global time order, file order breaking ties.
fn by_time(ratings: &[Rating]) -> Vec<Rating> {
    let mut sorted = ratings.to_vec();
    sorted.sort_by_key(|r| (r.at_s, r.line));
    sorted
}

/// Items ranked by how often they were rated (ties: smaller id).
struct Popularity {
    ranked: Vec<ProductId>,
}

impl Popularity {
    fn from(ratings: &[Rating]) -> Self {
        let mut counts: FastMap<u32, u64> = FastMap::default();
        for r in ratings {
            *counts.entry(r.item).or_default() += 1;
        }
        let mut items: Vec<(u32, u64)> = counts.into_iter().collect();
        items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Self {
            ranked: items
                .into_iter()
                .map(|(item, _)| product_id(item))
                .collect(),
        }
    }

    fn top(&self, had: &FastSet<ProductId>) -> Vec<ProductId> {
        self.ranked
            .iter()
            .filter(|p| !had.contains(p))
            .take(K)
            .copied()
            .collect()
    }
}

fn offline(
    dataset: &Dataset,
    mut replay: Replay<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> (Accumulator, Accumulator, u64) {
    let mut per_user: BTreeMap<u32, Vec<Rating>> = BTreeMap::new();
    for rating in &dataset.ratings {
        per_user.entry(rating.user).or_default().push(*rating);
    }
    let mut train = Vec::new();
    let mut tests: Vec<(u32, FastSet<ProductId>, Vec<ProductId>)> = Vec::new();
    for (&user, ratings) in &mut per_user {
        ratings.sort_by_key(|r| (r.at_s, r.line));
        let n = ratings.len();
        let test_len = ((0.2 * n as f64).round() as usize).max(1);
        let (training, test) = ratings.split_at(n - test_len);
        train.extend_from_slice(training);
        let had = training.iter().map(|r| product_id(r.item)).collect();
        let relevant = test.iter().map(|r| product_id(r.item)).collect();
        tests.push((user, had, relevant));
    }
    let train = by_time(&train);
    let total = (train.len() + tests.len()) as u64;
    for (n, rating) in train.iter().enumerate() {
        replay.apply(rating);
        if n % 4096 == 0 {
            progress(n as u64, total);
        }
    }
    let popularity = Popularity::from(&train);
    let (mut ours, mut baseline) = (Accumulator::default(), Accumulator::default());
    for (n, (user, had, relevant)) in tests.iter().enumerate() {
        ours.add(&replay.top(*user, had), relevant);
        baseline.add(&popularity.top(had), relevant);
        if n % 64 == 0 {
            progress((train.len() + n) as u64, total);
        }
    }
    progress(total, total);
    (ours, baseline, tests.len() as u64)
}

fn prequential(
    dataset: &Dataset,
    mut replay: Replay<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> (Accumulator, Accumulator, u64) {
    let all = by_time(&dataset.ratings);
    let cut = (all.len() as f64 * 0.8).floor() as usize;
    let popularity = Popularity::from(&all[..cut]);
    let mut had: FastMap<u32, FastSet<ProductId>> = FastMap::default();
    let (mut ours, mut baseline) = (Accumulator::default(), Accumulator::default());
    let total = all.len() as u64;
    for (n, rating) in all.iter().enumerate() {
        let item = product_id(rating.item);
        let user_had = had.entry(rating.user).or_default();
        if n >= cut && !user_had.contains(&item) {
            let relevant = [item];
            ours.add(&replay.top(rating.user, user_had), &relevant);
            baseline.add(&popularity.top(user_had), &relevant);
        }
        user_had.insert(item);
        replay.apply(rating);
        if n % 1024 == 0 {
            progress(n as u64, total);
        }
    }
    progress(total, total);
    let scored = ours.cases();
    (ours, baseline, scored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Planted tastes: every user first rates item 99 (popular), then users
    /// 1-40 rate items 1-5 (in varying order), users 41-80 items 11-15.
    fn planted() -> Dataset {
        let mut ratings = Vec::new();
        let mut line = 0;
        let mut at_s = 1_000_000;
        for user in 1..=80u32 {
            let base = if user <= 40 { 1 } else { 11 };
            let items = std::iter::once(99).chain((0..5u32).map(|i| base + (i + user) % 5));
            for item in items {
                line += 1;
                at_s += 60;
                let stars = if item == 99 { 3 } else { 5 };
                ratings.push(Rating {
                    user,
                    item,
                    stars,
                    at_s,
                    line,
                });
            }
        }
        Dataset { ratings }
    }

    #[test]
    fn planted_tastes_rank_first_and_beat_popularity() {
        let report = evaluate(
            &planted(),
            Mode::Offline,
            &AggregateSettings::default(),
            &RecommenderSettings::default(),
            &mut |_, _| {},
        );
        // Each user's test item is from the user's own group: the
        // co-occurrence finds it; popularity mostly cannot.
        assert_eq!(report.hr10, 1.0, "{report:?}");
        assert!(report.ndcg10 > report.popularity.ndcg10, "{report:?}");
        assert_eq!(report.users, 80);
    }

    #[test]
    fn prequential_scores_only_new_items_in_the_last_fifth() {
        let data = planted();
        let report = evaluate(
            &data,
            Mode::Prequential,
            &AggregateSettings::default(),
            &RecommenderSettings::default(),
            &mut |_, _| {},
        );
        let events = report.events_scored.unwrap();
        assert!(events > 0 && events <= (data.ratings.len() / 5 + 1) as u64);
        // Eleven items in all: popularity's top 10 holds nearly every one, so
        // the ranking (NDCG) is what tells the two apart.
        assert!(report.ndcg10 > report.popularity.ndcg10 + 0.1, "{report:?}");
    }
}
