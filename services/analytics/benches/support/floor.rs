//! The floor under `apply`: the fastest plain code for ONE of the aggregates
//! an event must update, item co-occurrence with the user's last distinct
//! products, and nothing else (no history, windows, affinity, funnel,
//! recommender's view, sequence check or UUID hashing).
//!
//! Why it exists: the in-process target (2.2 M events/s, every aggregate)
//! is a figure for Spark's bare keyed count. This measures what the machine
//! allows for the co-occurrence part alone, written as lean as we know how:
//! products and users interned to dense indexes before the clock starts,
//! each product's neighbours in a flat open-addressing table of (u32, u32)
//! slots (one cache line holds eight), a user's last products in a fixed
//! array, the same pruning rule as `PartitionState` (past twice the bound,
//! keep the heaviest), the same weights, window and bound as the defaults.
//! Whatever `apply` does on top can only be slower than this.
//!
//! Three layouts: one core; two threads that split the users (what the
//! partition actors do: each keeps the lists of its own users' pairs); two
//! threads that split the products (a second, item-keyed stage, with each
//! thread reading every event and no messages between them: more generous
//! than any real item-keyed stage).

use shopmesh_analytics::hash::FastMap;
use shopmesh_analytics::settings::AggregateSettings;
use shopmesh_analytics::state::InteractionKind;
use shopmesh_shared::events::{Event, EventPayload, ProductId, UserId};
use std::time::{Duration, Instant};

const EMPTY: u32 = u32::MAX;

/// One product touched by one user's event, interned.
#[derive(Clone, Copy)]
struct Touch {
    user: u32,
    product: u32,
    weight: u32,
}

/// Interns the events' users and products and lists their touches, as
/// `PartitionState::apply` derives them (an order touches each line).
fn touches(events: &[Event]) -> (Vec<Touch>, usize, usize) {
    let mut users: FastMap<UserId, u32> = FastMap::default();
    let mut products: FastMap<ProductId, u32> = FastMap::default();
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let Some(user) = event.meta.user_id else {
            continue;
        };
        let next = users.len() as u32;
        let user = *users.entry(user).or_insert(next);
        let mut touch = |product: ProductId, kind: InteractionKind| {
            let next = products.len() as u32;
            let product = *products.entry(product).or_insert(next);
            out.push(Touch {
                user,
                product,
                weight: kind.weight() as u32,
            });
        };
        match &event.payload {
            EventPayload::ProductViewed(p) => touch(p.product_id, InteractionKind::View),
            EventPayload::CartItemAdded(p) => touch(p.product_id, InteractionKind::Cart),
            EventPayload::ProductRated(p) => {
                touch(p.product_id, InteractionKind::Rating { stars: p.stars })
            }
            EventPayload::OrderPlaced(p) => {
                for line in &p.lines {
                    touch(line.product_id, InteractionKind::Purchase);
                }
            }
            _ => {}
        }
    }
    (out, users.len(), products.len())
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

/// Applies the touches `mine` selects (and, of those, only the list
/// updates `owns` allows) with its own tables; returns the touches applied.
fn run_layout(
    touches: &[Touch],
    users: usize,
    products: usize,
    config: &AggregateSettings,
    mine: impl Fn(&Touch) -> bool,
    owns: impl Fn(u32) -> bool,
) -> usize {
    let window = config.cooccurrence_window;
    let bound = config.neighbours;
    let mut lists: Vec<Neighbours> = (0..products).map(|_| Neighbours::new()).collect();
    let mut recent = vec![EMPTY; users * window];
    let mut scratch = Vec::new();
    let mut applied = 0;
    for touch in touches.iter().filter(|t| mine(t)) {
        applied += 1;
        let x = touch.product;
        let ring = &mut recent[touch.user as usize * window..][..window];
        for &y in ring.iter() {
            if y == EMPTY || y == x {
                continue;
            }
            for (list, other) in [(x, y), (y, x)] {
                if owns(list) {
                    let neighbours = &mut lists[list as usize];
                    neighbours.add(other, touch.weight);
                    if neighbours.len > 2 * bound {
                        neighbours.prune(bound, &mut scratch);
                    }
                }
            }
        }
        // Move to front: the window holds distinct products, newest first.
        let at = ring.iter().position(|&p| p == x).unwrap_or(window - 1);
        ring.copy_within(0..at, 1);
        ring[0] = x;
    }
    applied
}

/// Runs the three layouts over `events` and prints each one's events/s;
/// returns the one-core figure.
pub fn run(events: &[Event], config: &AggregateSettings) -> f64 {
    let (touches, users, products) = touches(events);
    let n = events.len() as f64;
    let timed = |layout: &dyn Fn() -> usize| -> Duration {
        let start = Instant::now();
        assert!(layout() > 0);
        start.elapsed()
    };
    let one_core = timed(&|| run_layout(&touches, users, products, config, |_| true, |_| true));
    let split = |by_user: bool| {
        timed(&|| {
            std::thread::scope(|scope| {
                let threads: Vec<_> = (0..2u32)
                    .map(|half| {
                        let touches = &touches;
                        scope.spawn(move || {
                            run_layout(
                                touches,
                                users,
                                products,
                                config,
                                |t| !by_user || t.user % 2 == half,
                                |p| by_user || p % 2 == half,
                            )
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).sum()
            })
        })
    };
    let by_users = split(true);
    let by_products = split(false);
    let rate = |took: Duration| n / took.as_secs_f64();
    println!(
        "floor: co-occurrence alone in flat tables (window {}, {} neighbours, {users} users, {products} products): one core {:.0} events/s; two threads splitting the users {:.0}; two threads splitting the products {:.0}",
        config.cooccurrence_window,
        config.neighbours,
        rate(one_core),
        rate(by_users),
        rate(by_products),
    );
    rate(one_core)
}
