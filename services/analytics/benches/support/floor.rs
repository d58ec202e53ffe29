//! The floor under `apply`: the same aggregates in the leanest plain code
//! we know how to write, with none of the service's obligations (no
//! sequence check, no UUID or category hashing, no messages, no recommender's
//! view, no reads to serve), so that `apply` can be judged against what
//! the machine allows rather than against Spark's bare keyed count.
//!
//! Lean how: users, products and categories interned to dense indexes
//! before the clock starts; every record in a flat array; each product's
//! neighbours in an open-addressing table of (u32, u32) slots (eight to a
//! cache line); a user's history and last products in fixed rings; the
//! same pruning rule as `PartitionState` (past twice the bound, keep the
//! heaviest), the same weights, history, window, bound and affinity
//! half-life as the defaults, and the service's own sliding `Window`.
//!
//! Two workloads: item co-occurrence alone (the aggregate an event costs
//! most in), and every aggregate. Layouts: one core; two threads that split
//! the users (what the partition actors do: each keeps its own users'
//! pairs); for co-occurrence alone also two threads that split the
//! products (a second, item-keyed stage, each thread reading every event,
//! no messages between them: more generous than any real such stage).

use shopmesh_analytics::hash::FastMap;
use shopmesh_analytics::settings::AggregateSettings;
use shopmesh_analytics::state::InteractionKind;
use shopmesh_analytics::window::{Counters, Window, WindowKind};
use shopmesh_shared::events::{Category, Event, EventPayload, EventType, ProductId, UserId};
use std::time::{Duration, Instant};

const EMPTY: u32 = u32::MAX;

/// One product touched by an event, interned.
#[derive(Clone, Copy)]
struct Touch {
    product: u32,
    category: u8,
    kind: InteractionKind,
    quantity: u64,
}

/// One event of a user, interned; its touches are `touches[first..end]`.
#[derive(Clone, Copy)]
struct UserEvent {
    user: u32,
    event_type: u8,
    at_ms: i64,
    first: u32,
    end: u32,
}

#[derive(Default)]
struct Interned {
    events: Vec<UserEvent>,
    touches: Vec<Touch>,
    users: usize,
    products: usize,
    categories: usize,
}

fn intern<K: std::hash::Hash + Eq>(map: &mut FastMap<K, u32>, key: K) -> u32 {
    let next = map.len() as u32;
    *map.entry(key).or_insert(next)
}

/// Interns the events of users and their touches, as `PartitionState`
/// derives them (an order touches each of its lines).
fn interned(events: &[Event]) -> Interned {
    let mut users: FastMap<UserId, u32> = FastMap::default();
    let mut products: FastMap<ProductId, u32> = FastMap::default();
    let mut categories: FastMap<Category, u32> = FastMap::default();
    let mut out = Interned::default();
    for event in events {
        let Some(user) = event.meta.user_id else {
            continue;
        };
        let first = out.touches.len() as u32;
        let mut touch = |product: ProductId, category: &Category, kind, quantity: u32| {
            out.touches.push(Touch {
                product: intern(&mut products, product),
                category: intern(&mut categories, category.clone()) as u8,
                kind,
                quantity: u64::from(quantity),
            });
        };
        match &event.payload {
            EventPayload::ProductViewed(p) => {
                touch(p.product_id, &p.category, InteractionKind::View, 1)
            }
            EventPayload::CartItemAdded(p) => {
                touch(p.product_id, &p.category, InteractionKind::Cart, p.quantity)
            }
            EventPayload::ProductRated(p) => touch(
                p.product_id,
                &p.category,
                InteractionKind::Rating { stars: p.stars },
                1,
            ),
            EventPayload::OrderPlaced(p) => {
                for line in &p.lines {
                    touch(
                        line.product_id,
                        &line.category,
                        InteractionKind::Purchase,
                        line.quantity,
                    );
                }
            }
            _ => {}
        }
        out.events.push(UserEvent {
            user: intern(&mut users, user),
            event_type: event.event_type() as u8,
            at_ms: event.meta.occurred_at.as_millis(),
            first,
            end: out.touches.len() as u32,
        });
    }
    assert!(categories.len() <= usize::from(u8::MAX));
    out.users = users.len();
    out.products = products.len();
    out.categories = categories.len();
    out
}

/// One product's neighbours: linear probing in a power-of-two table, at
/// most three quarters full.
struct Neighbours {
    slots: Vec<(u32, u32)>,
    len: usize,
}

impl Neighbours {
    fn new() -> Self {
        Self {
            slots: vec![(EMPTY, 0); 16],
            len: 0,
        }
    }

    #[inline]
    fn add(&mut self, key: u32, weight: u32) {
        let mask = self.slots.len() - 1;
        let mut at = (key.wrapping_mul(0x9E37_79B9) as usize) & mask;
        loop {
            let slot = &mut self.slots[at];
            if slot.0 == key {
                slot.1 += weight;
                return;
            }
            if slot.0 == EMPTY {
                *slot = (key, weight);
                self.len += 1;
                if self.len * 4 > self.slots.len() * 3 {
                    self.rehash(self.slots.len() * 2);
                }
                return;
            }
            at = (at + 1) & mask;
        }
    }

    fn rehash(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![(EMPTY, 0); size]);
        self.len = 0;
        for (key, weight) in old {
            if key != EMPTY {
                self.add(key, weight);
            }
        }
    }

    /// Keeps the `keep` heaviest (ties: the smaller index), as `prune` in
    /// the state does; `scratch` is reused from one pruning to the next.
    fn prune(&mut self, keep: usize, scratch: &mut Vec<(u32, u32)>) {
        scratch.clear();
        scratch.extend(self.slots.iter().copied().filter(|s| s.0 != EMPTY));
        scratch.select_nth_unstable_by(keep - 1, |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        scratch.truncate(keep);
        self.slots.fill((EMPTY, 0));
        self.len = 0;
        for &(key, weight) in scratch.iter() {
            self.add(key, weight);
        }
    }
}

/// A user's relation to a category, as `CategoryEntry`.
#[derive(Clone, Copy)]
struct Affinity {
    category: u8,
    stages: u8,
    score: f64,
    at_ms: i64,
}

/// Everything but the rings (kept in flat arrays beside it).
#[derive(Default, Clone)]
struct User {
    counts: [u64; 16],
    last_event_ms: i64,
    stages: u8,
    history_head: u32,
    affinities: Vec<Affinity>,
    purchased: Vec<u32>,
}

#[derive(Default)]
struct Product {
    all_time: Counters,
    windows: [Window; 3],
    touch_weight: u64,
}

/// Stage bits and funnel counts, as in `PartitionState`.
fn stage_of(kind: InteractionKind) -> u8 {
    match kind {
        InteractionKind::View => 1,
        InteractionKind::Cart => 2,
        InteractionKind::Purchase => 4,
        InteractionKind::Rating { .. } => 0,
    }
}

fn count_stages(funnel: &mut [u64; 3], new: u8) {
    for (bit, count) in funnel.iter_mut().enumerate() {
        *count += u64::from(new & (1 << bit) != 0);
    }
}

/// What a layout keeps: its share of the state.
struct Floor<'a> {
    config: &'a AggregateSettings,
    every_aggregate: bool,
    lists: Vec<Neighbours>,
    recent: Vec<u32>,
    scratch: Vec<(u32, u32)>,
    users: Vec<User>,
    history: Vec<(u32, InteractionKind, i64)>,
    products: Vec<Product>,
    funnel: [u64; 3],
    funnel_by_category: Vec<[u64; 3]>,
}

impl<'a> Floor<'a> {
    fn new(data: &Interned, config: &'a AggregateSettings, every_aggregate: bool) -> Self {
        let (users, products) = if every_aggregate {
            (data.users, data.products)
        } else {
            (0, 0)
        };
        Self {
            config,
            every_aggregate,
            lists: (0..data.products).map(|_| Neighbours::new()).collect(),
            recent: vec![EMPTY; data.users * config.cooccurrence_window],
            scratch: Vec::new(),
            users: vec![User::default(); users],
            history: vec![(EMPTY, InteractionKind::View, 0); users * config.history],
            products: (0..products).map(|_| Product::default()).collect(),
            funnel: [0; 3],
            funnel_by_category: vec![[0; 3]; data.categories],
        }
    }

    /// Applies one event; co-occurrence only to the lists `owns` allows.
    fn apply(&mut self, event: &UserEvent, touches: &[Touch], owns: &impl Fn(u32) -> bool) {
        if self.every_aggregate {
            let user = &mut self.users[event.user as usize];
            user.counts[usize::from(event.event_type)] += 1;
            user.last_event_ms = user.last_event_ms.max(event.at_ms);
        }
        for touch in touches {
            if self.every_aggregate {
                self.aggregate(event, touch);
            }
            self.cooccurrence(event.user, touch, owns);
        }
    }

    /// Every aggregate but co-occurrence, for one touch.
    fn aggregate(&mut self, event: &UserEvent, touch: &Touch) {
        let weight = touch.kind.weight();
        let quantity = touch.quantity;
        let update = |c: &mut Counters| touch.kind.count(c, quantity);
        let product = &mut self.products[touch.product as usize];
        update(&mut product.all_time);
        for kind in WindowKind::ALL {
            product.windows[kind.index()].record(kind, event.at_ms, update);
        }
        product.touch_weight += weight;
        let user = &mut self.users[event.user as usize];
        let history = self.config.history;
        let ring = &mut self.history[event.user as usize * history..][..history];
        user.history_head = (user.history_head + 1) % history as u32;
        ring[user.history_head as usize] = (touch.product, touch.kind, event.at_ms);
        if touch.kind == InteractionKind::Purchase
            && let Err(at) = user.purchased.binary_search(&touch.product)
        {
            user.purchased.insert(at, touch.product);
        }
        let half_life_ms = self.config.affinity_half_life.as_millis() as f64;
        let at = match user
            .affinities
            .iter()
            .position(|a| a.category == touch.category)
        {
            Some(at) => at,
            None => {
                user.affinities.push(Affinity {
                    category: touch.category,
                    stages: 0,
                    score: 0.0,
                    at_ms: event.at_ms,
                });
                user.affinities.len() - 1
            }
        };
        let entry = &mut user.affinities[at];
        if event.at_ms >= entry.at_ms {
            let age = (event.at_ms - entry.at_ms) as f64;
            entry.score = entry.score * 0.5f64.powf(age / half_life_ms) + weight as f64;
            entry.at_ms = event.at_ms;
        } else {
            let age = (entry.at_ms - event.at_ms) as f64;
            entry.score += weight as f64 * 0.5f64.powf(age / half_life_ms);
        }
        let stage = stage_of(touch.kind);
        count_stages(&mut self.funnel, stage & !user.stages);
        user.stages |= stage;
        count_stages(
            &mut self.funnel_by_category[usize::from(touch.category)],
            stage & !entry.stages,
        );
        entry.stages |= stage;
    }

    /// Co-occurrence of the touched product with the user's last distinct
    /// products, both directions, then the product to the front.
    fn cooccurrence(&mut self, user: u32, touch: &Touch, owns: &impl Fn(u32) -> bool) {
        let window = self.config.cooccurrence_window;
        let bound = self.config.neighbours;
        let weight = touch.kind.weight() as u32;
        let x = touch.product;
        let ring = &mut self.recent[user as usize * window..][..window];
        for &y in ring.iter() {
            if y == EMPTY || y == x {
                continue;
            }
            for (list, other) in [(x, y), (y, x)] {
                if owns(list) {
                    let neighbours = &mut self.lists[list as usize];
                    neighbours.add(other, weight);
                    if neighbours.len > 2 * bound {
                        neighbours.prune(bound, &mut self.scratch);
                    }
                }
            }
        }
        let at = ring.iter().position(|&p| p == x).unwrap_or(window - 1);
        ring.copy_within(0..at, 1);
        ring[0] = x;
    }
}

/// Applies the events `mine` selects with a state of its own; returns how
/// many it applied.
fn run_layout(
    data: &Interned,
    config: &AggregateSettings,
    every_aggregate: bool,
    mine: impl Fn(&UserEvent) -> bool,
    owns: impl Fn(u32) -> bool,
) -> usize {
    let mut floor = Floor::new(data, config, every_aggregate);
    let mut applied = 0;
    for event in data.events.iter().filter(|e| mine(e)) {
        applied += 1;
        let touches = &data.touches[event.first as usize..event.end as usize];
        floor.apply(event, touches, &owns);
    }
    applied
}

/// Two threads, each with its own state: splitting the users (each applies
/// its users' events) or the products (each applies every event to the
/// lists it owns).
fn two_threads(
    data: &Interned,
    config: &AggregateSettings,
    every_aggregate: bool,
    by_user: bool,
) -> usize {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2u32)
            .map(|half| {
                scope.spawn(move || {
                    run_layout(
                        data,
                        config,
                        every_aggregate,
                        |e| !by_user || e.user % 2 == half,
                        |p| by_user || p % 2 == half,
                    )
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    })
}

/// The best events/s of each layout over `rounds`.
pub struct FloorFigures {
    pub every_one_core: f64,
    pub every_two_threads: f64,
    pub cooccurrence_one_core: f64,
    pub cooccurrence_by_users: f64,
    pub cooccurrence_by_products: f64,
}

/// Runs every workload and layout `rounds` times over `events`, printing
/// each run; returns the best of each.
pub fn run(events: &[Event], config: &AggregateSettings, rounds: usize) -> FloorFigures {
    let data = interned(events);
    assert!(EventType::ALL.len() <= 16, "User::counts holds 16 types");
    let n = events.len() as f64;
    let rate = |layout: &dyn Fn() -> usize| -> f64 {
        let start = Instant::now();
        assert!(layout() > 0);
        let took: Duration = start.elapsed();
        n / took.as_secs_f64()
    };
    let mut best = FloorFigures {
        every_one_core: 0.0,
        every_two_threads: 0.0,
        cooccurrence_one_core: 0.0,
        cooccurrence_by_users: 0.0,
        cooccurrence_by_products: 0.0,
    };
    for round in 0..rounds {
        let every = rate(&|| run_layout(&data, config, true, |_| true, |_| true));
        let every_two = rate(&|| two_threads(&data, config, true, true));
        let alone = rate(&|| run_layout(&data, config, false, |_| true, |_| true));
        let by_users = rate(&|| two_threads(&data, config, false, true));
        let by_products = rate(&|| two_threads(&data, config, false, false));
        println!(
            "floor round {round} ({} users, {} products, window {}, {} neighbours): every aggregate: one core {every:.0} events/s, two threads splitting the users {every_two:.0}; co-occurrence alone: one core {alone:.0}, two threads splitting the users {by_users:.0}, splitting the products {by_products:.0}",
            data.users, data.products, config.cooccurrence_window, config.neighbours,
        );
        best.every_one_core = best.every_one_core.max(every);
        best.every_two_threads = best.every_two_threads.max(every_two);
        best.cooccurrence_one_core = best.cooccurrence_one_core.max(alone);
        best.cooccurrence_by_users = best.cooccurrence_by_users.max(by_users);
        best.cooccurrence_by_products = best.cooccurrence_by_products.max(by_products);
    }
    best
}
