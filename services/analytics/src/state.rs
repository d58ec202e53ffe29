//! One partition's whole analytics state and the pure function that applies an
//! event to it. The partition actor owns one [`PartitionState`]; tests and the
//! benchmark apply events to it directly, so the actor path can be compared
//! with a plain sequential application.
//!
//! Exactly-once: `last_sequence` is the stream sequence last applied, and an
//! event at or below it is ignored. It is snapshotted with the state, so a
//! replay after a restart never counts twice.

use crate::hash::FastMap;
use crate::items::{ItemSink, NoSink};
use crate::settings::AggregateSettings;
use crate::window::{Counters, Window, WindowKind};
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{Category, Event, EventPayload, EventType, ProductId, UserId};
use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

/// What a user did with a product, for the history.
/// Externally tagged (`"view"`, `{"rating":{"stars":4}}`): bincode, which
/// encodes snapshots, supports neither internal tags nor `flatten`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    View,
    Cart,
    Purchase,
    Rating { stars: u8 },
}

impl InteractionKind {
    /// Weight in co-occurrence and category affinity: a view is a hint, a cart
    /// add stronger, a purchase strongest; a rating counts like a cart add.
    pub fn weight(self) -> u64 {
        match self {
            InteractionKind::View => 1,
            InteractionKind::Cart => 3,
            InteractionKind::Purchase => 5,
            InteractionKind::Rating { .. } => 3,
        }
    }

    /// Counts one touch of this kind (`quantity` units) into a product's
    /// counters.
    pub fn count(self, counters: &mut Counters, quantity: u64) {
        match self {
            InteractionKind::View => counters.views += 1,
            InteractionKind::Cart => counters.cart_adds += quantity,
            InteractionKind::Purchase => counters.purchases += quantity,
            InteractionKind::Rating { stars } => {
                counters.rating_count += 1;
                counters.rating_sum += u64::from(stars);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub product_id: ProductId,
    pub kind: InteractionKind,
    pub at_ms: i64,
}

/// Funnel stages a user (or a user in a category) has reached, as bits.
const VIEWED: u8 = 1;
const CARTED: u8 = 2;
const BOUGHT: u8 = 4;

/// A user's relation to one category: decayed affinity and funnel stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoryEntry {
    /// Affinity as of `at_ms` (event time).
    pub score: f64,
    pub at_ms: i64,
    pub stages: u8,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserAggregate {
    /// Events by type, indexed like `EventType::ALL`.
    pub counts: Vec<u64>,
    pub recent: VecDeque<Interaction>,
    pub categories: FastMap<Category, CategoryEntry>,
    pub purchased: BTreeSet<ProductId>,
    /// Last distinct products touched, newest first: the co-occurrence window.
    pub recent_products: VecDeque<ProductId>,
    pub stages: u8,
    pub last_event_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductAggregate {
    pub category: Option<Category>,
    /// From `product.created`, for the reasons recommendations give.
    pub name: Option<String>,
    /// Units in stock as of the last `product.created`/`product.updated`
    /// this partition saw (those carry no user, so they all land in
    /// partition 0); `None`: never seen, not a product of the catalogue.
    pub stock: Option<i64>,
    /// Sum of the co-occurrence weights of the users' touches of this
    /// product: the product's "size" in the cosine similarity.
    pub touch_weight: u64,
    pub all_time: Counters,
    pub windows: [Window; 3],
}

/// Distinct users per funnel stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelCounts {
    pub viewers: u64,
    pub carters: u64,
    pub buyers: u64,
}

impl FunnelCounts {
    fn count(&mut self, new_stages: u8) {
        self.viewers += u64::from(new_stages & VIEWED != 0);
        self.carters += u64::from(new_stages & CARTED != 0);
        self.buyers += u64::from(new_stages & BOUGHT != 0);
    }

    pub fn add(&mut self, other: &FunnelCounts) {
        self.viewers += other.viewers;
        self.carters += other.carters;
        self.buyers += other.buyers;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    pub last_sequence: u64,
    pub applied: u64,
    pub users: FastMap<UserId, UserAggregate>,
    pub products: FastMap<ProductId, ProductAggregate>,
    pub funnel: FunnelCounts,
    pub funnel_by_category: FastMap<Category, FunnelCounts>,
    /// Sparse co-occurrence: product -> neighbour -> weight, bounded per product.
    pub cooccurrence: FastMap<ProductId, FastMap<ProductId, u64>>,
}

/// One product touched by an event, and how.
#[derive(Clone)]
struct Touch<'a> {
    product_id: ProductId,
    category: &'a Category,
    kind: InteractionKind,
    quantity: u64,
}

/// The products an event touches, and how: one for a view, a rating or a
/// cart add, every line of a placed order, none otherwise. An iterator, not
/// a list, so that applying an event allocates nothing for it.
fn touches(payload: &EventPayload) -> impl Iterator<Item = Touch<'_>> + Clone {
    let (single, lines) = match payload {
        EventPayload::ProductViewed(p) => (
            Some(Touch {
                product_id: p.product_id,
                category: &p.category,
                kind: InteractionKind::View,
                quantity: 1,
            }),
            &[][..],
        ),
        EventPayload::ProductRated(p) => (
            Some(Touch {
                product_id: p.product_id,
                category: &p.category,
                kind: InteractionKind::Rating { stars: p.stars },
                quantity: 1,
            }),
            &[][..],
        ),
        EventPayload::CartItemAdded(p) => (
            Some(Touch {
                product_id: p.product_id,
                category: &p.category,
                kind: InteractionKind::Cart,
                quantity: u64::from(p.quantity),
            }),
            &[][..],
        ),
        EventPayload::OrderPlaced(p) => (None, &p.lines[..]),
        EventPayload::ProductCreated(_)
        | EventPayload::ProductUpdated(_)
        | EventPayload::OrderCancelled(_)
        | EventPayload::UserRegistered(_)
        | EventPayload::UserLoggedIn(_)
        | EventPayload::ProductSearched(_)
        | EventPayload::CartItemRemoved(_) => (None, &[][..]),
    };
    single.into_iter().chain(lines.iter().map(|line| Touch {
        product_id: line.product_id,
        category: &line.category,
        kind: InteractionKind::Purchase,
        quantity: u64::from(line.quantity),
    }))
}

impl PartitionState {
    /// Applies the event at `sequence` unless it was applied already; true
    /// when it changed the state.
    pub fn apply(&mut self, sequence: u64, event: &Event, config: &AggregateSettings) -> bool {
        self.apply_with(sequence, event, config, &mut NoSink)
    }

    /// [`apply`](Self::apply), also telling `items` every change to the
    /// product-keyed parts (co-occurrence, touch weights, catalogue), so a
    /// product-keyed view summed over partitions stays exact.
    pub fn apply_with(
        &mut self,
        sequence: u64,
        event: &Event,
        config: &AggregateSettings,
        items: &mut impl ItemSink,
    ) -> bool {
        if sequence <= self.last_sequence {
            return false;
        }
        self.last_sequence = sequence;
        self.applied += 1;
        let at_ms = event.meta.occurred_at.as_millis();
        match &event.payload {
            EventPayload::ProductCreated(p) => {
                let product = self.products.entry(p.product_id).or_default();
                product.category = Some(p.category.clone());
                product.name = Some(p.name.clone());
                product.stock = Some(p.stock);
                items.catalogue(p.product_id, Some(&p.name), Some(&p.category), p.stock);
            }
            EventPayload::ProductUpdated(p) => {
                self.products.entry(p.product_id).or_default().stock = Some(p.stock);
                items.catalogue(p.product_id, None, None, p.stock);
            }
            EventPayload::OrderCancelled(p) => {
                for line in &p.lines {
                    let quantity = u64::from(line.quantity);
                    self.record_product(line.product_id, &line.category, at_ms, |c| {
                        c.cancelled += quantity
                    });
                }
            }
            // Touches: counted below.
            EventPayload::ProductViewed(_)
            | EventPayload::ProductRated(_)
            | EventPayload::CartItemAdded(_)
            | EventPayload::OrderPlaced(_) => {}
            // Counted per user below; they move no product figure.
            EventPayload::UserRegistered(_)
            | EventPayload::UserLoggedIn(_)
            | EventPayload::ProductSearched(_)
            | EventPayload::CartItemRemoved(_) => {}
        }
        let touches = touches(&event.payload);
        for touch in touches.clone() {
            self.count_product(&touch, at_ms);
        }
        if let Some(user_id) = event.meta.user_id {
            let user = self.users.entry(user_id).or_default();
            if user.counts.is_empty() {
                user.counts = vec![0; EventType::ALL.len()];
            }
            user.counts[event.event_type() as usize] += 1;
            user.last_event_ms = user.last_event_ms.max(at_ms);
            if let EventPayload::OrderCancelled(p) = &event.payload {
                // Not bought after all: it may be recommended again.
                for line in &p.lines {
                    user.purchased.remove(&line.product_id);
                }
            }
            for touch in touches {
                if let Some(product) = self.products.get_mut(&touch.product_id) {
                    product.touch_weight += touch.kind.weight();
                    items.touched(touch.product_id, touch.kind.weight());
                }
                apply_user_touch(
                    user,
                    &touch,
                    at_ms,
                    config,
                    &mut self.funnel,
                    &mut self.funnel_by_category,
                    &mut self.cooccurrence,
                    items,
                );
            }
        }
        true
    }

    fn count_product(&mut self, touch: &Touch<'_>, at_ms: i64) {
        let kind = touch.kind;
        let quantity = touch.quantity;
        self.record_product(touch.product_id, touch.category, at_ms, |c| {
            kind.count(c, quantity)
        });
    }

    /// Applies `update` to the product's all-time counters and to the bucket
    /// of `at_ms` in each window.
    fn record_product(
        &mut self,
        product_id: ProductId,
        category: &Category,
        at_ms: i64,
        update: impl Fn(&mut Counters) + Copy,
    ) {
        let product = self.products.entry(product_id).or_default();
        if product.category.as_ref() != Some(category) {
            product.category = Some(category.clone());
        }
        update(&mut product.all_time);
        for window in WindowKind::ALL {
            product.windows[window.index()].record(window, at_ms, update);
        }
    }
}

fn decayed(score: f64, from_ms: i64, to_ms: i64, half_life_ms: f64) -> f64 {
    if to_ms <= from_ms {
        return score;
    }
    score * 0.5f64.powf((to_ms - from_ms) as f64 / half_life_ms)
}

#[allow(clippy::too_many_arguments)]
fn apply_user_touch(
    user: &mut UserAggregate,
    touch: &Touch<'_>,
    at_ms: i64,
    config: &AggregateSettings,
    funnel: &mut FunnelCounts,
    funnel_by_category: &mut FastMap<Category, FunnelCounts>,
    cooccurrence: &mut FastMap<ProductId, FastMap<ProductId, u64>>,
    items: &mut impl ItemSink,
) {
    let weight = touch.kind.weight();
    // History.
    user.recent.push_front(Interaction {
        product_id: touch.product_id,
        kind: touch.kind,
        at_ms,
    });
    user.recent.truncate(config.history);
    if touch.kind == InteractionKind::Purchase {
        user.purchased.insert(touch.product_id);
    }
    // Affinity, decayed by event time; an event older than the entry adds its
    // weight decayed back to the entry's time, so order does not matter much.
    let half_life_ms = config.affinity_half_life.as_millis() as f64;
    let entry = match user.categories.get_mut(touch.category) {
        Some(entry) => entry,
        None => user.categories.entry(touch.category.clone()).or_default(),
    };
    if at_ms >= entry.at_ms {
        entry.score = decayed(entry.score, entry.at_ms, at_ms, half_life_ms) + weight as f64;
        entry.at_ms = at_ms;
    } else {
        entry.score += decayed(weight as f64, at_ms, entry.at_ms, half_life_ms);
    }
    // Funnel: a stage counts once per user, overall and per category.
    let stage = match touch.kind {
        InteractionKind::View => VIEWED,
        InteractionKind::Cart => CARTED,
        InteractionKind::Purchase => BOUGHT,
        InteractionKind::Rating { .. } => 0,
    };
    let new_overall = stage & !user.stages;
    user.stages |= stage;
    funnel.count(new_overall);
    let new_in_category = stage & !entry.stages;
    entry.stages |= stage;
    if new_in_category != 0 {
        match funnel_by_category.get_mut(touch.category) {
            Some(counts) => counts.count(new_in_category),
            None => funnel_by_category
                .entry(touch.category.clone())
                .or_default()
                .count(new_in_category),
        }
    }
    // Co-occurrence with the user's last distinct products: at most
    // `cooccurrence_window` updates per event, whatever the history length.
    // Both directions of each pair; x's own list is looked up once.
    let x = touch.product_id;
    let others = || {
        user.recent_products
            .iter()
            .copied()
            .filter(move |&y| y != x)
    };
    bump(cooccurrence, x, others(), weight, config.neighbours, items);
    for y in others() {
        bump(
            cooccurrence,
            y,
            std::iter::once(x),
            weight,
            config.neighbours,
            items,
        );
    }
    if let Some(position) = user.recent_products.iter().position(|&p| p == x) {
        user.recent_products.remove(position);
    }
    user.recent_products.push_front(x);
    user.recent_products.truncate(config.cooccurrence_window);
}

/// Adds `weight` to co(x, y) for each of `ys`. A list is pruned back to its
/// `max_neighbours` heaviest entries (ties: the smaller id, so pruning is
/// deterministic) when it grows past twice that: amortised O(log n) per
/// update instead of a scan for the minimum on every insert, and never more
/// than `2 * max_neighbours` between events.
/// (Pruning by the cosine instead of the raw count was tried: it kept rarer
/// neighbours and lost 7% of the prequential hit rate on MovieLens.)
fn bump(
    cooccurrence: &mut FastMap<ProductId, FastMap<ProductId, u64>>,
    x: ProductId,
    ys: impl Iterator<Item = ProductId>,
    weight: u64,
    max_neighbours: usize,
    items: &mut impl ItemSink,
) {
    let mut ys = ys.peekable();
    if ys.peek().is_none() {
        return;
    }
    let neighbours = cooccurrence.entry(x).or_default();
    for y in ys {
        *neighbours.entry(y).or_default() += weight;
        items.cooccurrence(x, y, weight as i64);
    }
    if neighbours.len() > 2 * max_neighbours {
        prune(x, neighbours, max_neighbours, items);
    }
}

fn prune(
    x: ProductId,
    neighbours: &mut FastMap<ProductId, u64>,
    keep: usize,
    items: &mut impl ItemSink,
) {
    let mut ranked: Vec<(Reverse<u64>, ProductId)> = neighbours
        .iter()
        .map(|(&id, &w)| (Reverse(w), id))
        .collect();
    let (_, &mut cut, _) = ranked.select_nth_unstable(keep - 1);
    neighbours.retain(|&id, &mut w| {
        let keep = (Reverse(w), id) <= cut;
        if !keep {
            items.cooccurrence(x, id, -(w as i64));
        }
        keep
    });
}

// ---- Reads: each returns what one partition knows; `gather` merges them. ----

/// A user's profile; complete in the user's partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub user_id: UserId,
    pub counts: std::collections::BTreeMap<String, u64>,
    pub recent: Vec<Interaction>,
    pub top_categories: Vec<CategoryAffinity>,
    pub purchased: Vec<ProductId>,
    pub last_event_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryAffinity {
    pub category: Category,
    /// Decayed to the user's last event time.
    pub score: f64,
}

/// One product's figures from one partition (or summed over several).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductFigures {
    pub category: Option<Category>,
    pub all_time: Counters,
    pub last_1m: Counters,
    pub last_1h: Counters,
    pub last_24h: Counters,
}

impl ProductFigures {
    pub fn add(&mut self, other: &ProductFigures) {
        if self.category.is_none() {
            self.category.clone_from(&other.category);
        }
        self.all_time.add(&other.all_time);
        self.last_1m.add(&other.last_1m);
        self.last_1h.add(&other.last_1h);
        self.last_24h.add(&other.last_24h);
    }
}

/// A product's activity score in a window, from one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoredProduct {
    pub product_id: ProductId,
    pub category: Option<Category>,
    pub score: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelFigures {
    pub overall: FunnelCounts,
    pub by_category: std::collections::BTreeMap<Category, FunnelCounts>,
}

impl FunnelFigures {
    pub fn add(&mut self, other: &FunnelFigures) {
        self.overall.add(&other.overall);
        for (category, counts) in &other.by_category {
            self.by_category
                .entry(category.clone())
                .or_default()
                .add(counts);
        }
    }
}

/// Approximate entry counts, for /stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSize {
    pub users: usize,
    pub products: usize,
    pub cooccurrence_pairs: usize,
}

impl PartitionState {
    /// The profile of `user_id`, affinities decayed to the user's last event.
    pub fn user_profile(&self, user_id: UserId, half_life: Duration) -> Option<UserProfile> {
        let half_life_ms = half_life.as_millis() as f64;
        let user = self.users.get(&user_id)?;
        let counts = EventType::ALL
            .iter()
            .zip(&user.counts)
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| (t.as_str().to_owned(), *n))
            .collect();
        let mut top_categories: Vec<CategoryAffinity> = user
            .categories
            .iter()
            .map(|(category, entry)| CategoryAffinity {
                category: category.clone(),
                score: decayed(entry.score, entry.at_ms, user.last_event_ms, half_life_ms),
            })
            .collect();
        top_categories.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.category.cmp(&b.category))
        });
        Some(UserProfile {
            user_id,
            counts,
            recent: user.recent.iter().copied().collect(),
            top_categories,
            purchased: user.purchased.iter().copied().collect(),
            last_event_at_ms: user.last_event_ms,
        })
    }

    pub fn product_figures(&self, product_id: ProductId, now_ms: i64) -> Option<ProductFigures> {
        let product = self.products.get(&product_id)?;
        let window = |kind: WindowKind| product.windows[kind.index()].sum(kind, now_ms);
        Some(ProductFigures {
            category: product.category.clone(),
            all_time: product.all_time,
            last_1m: window(WindowKind::OneMinute),
            last_1h: window(WindowKind::OneHour),
            last_24h: window(WindowKind::Day),
        })
    }

    /// Every product with activity in `window` (and `category`, when given):
    /// all of them, not a top-k, so that partial answers merge exactly.
    pub fn scored_products(
        &self,
        window: WindowKind,
        category: Option<&Category>,
        now_ms: i64,
    ) -> Vec<ScoredProduct> {
        self.products
            .iter()
            .filter(|(_, p)| category.is_none() || p.category.as_ref() == category)
            .filter_map(|(&product_id, p)| {
                let score = p.windows[window.index()]
                    .sum(window, now_ms)
                    .activity_score();
                (score > 0).then(|| ScoredProduct {
                    product_id,
                    category: p.category.clone(),
                    score,
                })
            })
            .collect()
    }

    pub fn funnel_figures(&self) -> FunnelFigures {
        FunnelFigures {
            overall: self.funnel,
            by_category: self
                .funnel_by_category
                .iter()
                .map(|(c, n)| (c.clone(), *n))
                .collect(),
        }
    }

    /// Up to `2 * neighbours` entries (see `bump`); callers keep their top k.
    pub fn neighbours(&self, product_id: ProductId) -> Vec<(ProductId, u64)> {
        self.cooccurrence
            .get(&product_id)
            .map(|n| n.iter().map(|(&id, &w)| (id, w)).collect())
            .unwrap_or_default()
    }

    pub fn size(&self) -> StateSize {
        StateSize {
            users: self.users.len(),
            products: self.products.len(),
            cooccurrence_pairs: self.cooccurrence.values().map(FastMap::len).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopmesh_shared::events::{
        EventMeta, OrderId, OrderLine, OrderPlaced, ProductRated, Timestamp,
    };
    use shopmesh_shared::testkit::sample_events;

    fn config() -> AggregateSettings {
        AggregateSettings::default()
    }

    #[test]
    fn a_populated_state_survives_the_snapshot_codec() {
        let mut state = PartitionState::default();
        for (n, event) in sample_events().iter().enumerate() {
            assert!(state.apply(n as u64 + 1, event, &config()));
        }
        let bytes = shopmesh_shared::codec::encode_value(&state).unwrap();
        let back: PartitionState = shopmesh_shared::codec::decode_value(&bytes).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.last_sequence, 11);
    }

    #[test]
    fn sequences_at_or_below_the_last_are_not_applied_again() {
        let events = sample_events();
        let mut state = PartitionState::default();
        assert!(state.apply(5, &events[4], &config()));
        let before = state.clone();
        assert!(!state.apply(5, &events[4], &config()));
        assert!(!state.apply(4, &events[5], &config()));
        assert_eq!(state, before);
    }

    #[test]
    fn funnel_stages_count_each_user_once() {
        let events = sample_events();
        let user = events[0].meta.user_id.unwrap();
        let mut state = PartitionState::default();
        for (n, event) in events.iter().chain(events.iter()).enumerate() {
            // Fresh sequences: the same events again are new occurrences.
            state.apply(n as u64 + 1, event, &config());
        }
        assert_eq!(
            state.funnel,
            FunnelCounts {
                viewers: 1,
                carters: 1,
                buyers: 1
            }
        );
        let profile = state
            .user_profile(user, config().affinity_half_life)
            .unwrap();
        assert_eq!(profile.counts["product.viewed"], 2);
        // The samples end by cancelling their order.
        assert!(profile.purchased.is_empty());
    }

    #[test]
    fn a_cancelled_order_is_no_longer_a_purchase() {
        let events = sample_events();
        let (placed, cancel) = (&events[9], &events[10]);
        let EventPayload::OrderPlaced(order) = &placed.payload else {
            panic!("the samples place their order tenth");
        };
        let user = placed.meta.user_id.unwrap();
        let mut state = PartitionState::default();
        state.apply(1, placed, &config());
        let bought = order.lines[0].product_id;
        let now = placed.meta.occurred_at.as_millis();
        let before = state.product_figures(bought, now).unwrap();
        assert_eq!(
            before.all_time.net_purchases(),
            u64::from(order.lines[0].quantity)
        );
        let profile =
            |s: &PartitionState| s.user_profile(user, config().affinity_half_life).unwrap();
        assert!(profile(&state).purchased.contains(&bought));

        state.apply(2, cancel, &config());
        let after = state.product_figures(bought, now).unwrap();
        assert_eq!(after.all_time.purchases, before.all_time.purchases);
        assert_eq!(after.all_time.net_purchases(), 0);
        assert_eq!(after.last_1h.net_purchases(), 0);
        assert!(profile(&state).purchased.is_empty());
        // The funnel keeps the stage the user reached.
        assert_eq!(state.funnel.buyers, 1);
    }

    #[test]
    fn affinity_halves_after_one_half_life_of_event_time() {
        let events = sample_events();
        let user = events[0].meta.user_id.unwrap();
        let rated = |at: i64| {
            let mut meta = EventMeta::new("product", Some(user));
            meta.occurred_at = Timestamp::from_millis(at);
            shopmesh_shared::events::Event::new(
                meta,
                ProductRated {
                    product_id: ProductId::new_v7(),
                    category: Category::parse("books").unwrap(),
                    stars: 5,
                },
            )
        };
        let half_life = config().affinity_half_life.as_millis() as i64;
        let mut state = PartitionState::default();
        state.apply(1, &rated(1_000), &config());
        // Another category one half-life later moves "now" (event time).
        let mut meta = EventMeta::new("order", Some(user));
        meta.occurred_at = Timestamp::from_millis(1_000 + half_life);
        let order = shopmesh_shared::events::Event::new(
            meta,
            OrderPlaced {
                order_id: OrderId::new_v7(),
                lines: vec![OrderLine {
                    product_id: ProductId::new_v7(),
                    category: Category::parse("garden").unwrap(),
                    quantity: 1,
                    unit_price_cents: 1,
                }],
                total_cents: 1,
            },
        );
        state.apply(2, &order, &config());
        let profile = state
            .user_profile(user, config().affinity_half_life)
            .unwrap();
        let score = |name: &str| {
            profile
                .top_categories
                .iter()
                .find(|c| c.category.as_str() == name)
                .unwrap()
                .score
        };
        assert!((score("books") - 1.5).abs() < 1e-9);
        assert!((score("garden") - 5.0).abs() < 1e-9);
        assert_eq!(profile.top_categories[0].category.as_str(), "garden");
    }

    #[test]
    fn cooccurrence_is_symmetric_weighted_and_bounded() {
        let config = AggregateSettings {
            neighbours: 2,
            ..config()
        };
        let user = shopmesh_shared::events::UserId::new_v7();
        let mut products: Vec<ProductId> = (0..6).map(|_| ProductId::new_v7()).collect();
        products.sort();
        let view = |p: ProductId| {
            shopmesh_shared::events::Event::new(
                EventMeta::new("product", Some(user)),
                shopmesh_shared::events::ProductViewed {
                    product_id: p,
                    category: Category::parse("books").unwrap(),
                },
            )
        };
        let mut state = PartitionState::default();
        for (n, &p) in products.iter().enumerate() {
            state.apply(n as u64 + 1, &view(p), &config);
        }
        let (a, b) = (products[0], products[1]);
        assert_eq!(state.cooccurrence[&a][&b], 1);
        assert_eq!(state.cooccurrence[&b][&a], 1);
        assert!(state.cooccurrence.values().all(|n| n.len() <= 4));
        // The first product's fifth neighbour made the list too long: it was
        // pruned to the two best (equal weights: the smallest ids).
        let mut first: Vec<ProductId> = state.cooccurrence[&products[0]].keys().copied().collect();
        first.sort();
        assert_eq!(first, vec![products[1], products[2]]);
        assert!(state.cooccurrence.values().all(|n| n.len() <= 2));
    }
}
