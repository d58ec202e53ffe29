//! The product-keyed view the recommender reads: co-occurrence, touch
//! weights and the catalogue summed over every local partition.
//!
//! Why it exists: user-keyed partitions each hold their own users' part of a
//! product's co-occurrence, so a recommendation built by asking every
//! partition costs 32 scans of up to 400 neighbours per seed (measured: a few
//! hundred requests/s at best, seconds of queueing under load). This view
//! holds the sums, so a recommendation reads each seed's list once.
//!
//! It is derived, never snapshotted: the partition actors tell it every
//! change they make to their product-keyed parts (including prunings) as
//! they apply an event ([`ItemSink`]), and at start-up it is rebuilt from the
//! partition states just loaded. It is therefore always the exact sum of the
//! partitions' states, and the partitions' exactly-once guarantee (last
//! applied sequence in each snapshot) carries over without per-partition
//! sequence bookkeeping here.
//!
//! Concurrency: striped by product (64 mutexes), no global lock; a writer
//! holds one stripe for one update, a reader for one product's list.

use crate::hash::{FastBuild, FastMap};
use crate::state::PartitionState;
use crate::sums::NeighbourSums;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{Category, ProductId};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, RwLock};

/// Where a partition reports changes to its product-keyed parts.
pub trait ItemSink {
    /// co(x, y) changed by `delta` (negative when pruned).
    fn cooccurrence(&mut self, x: ProductId, y: ProductId, delta: i64);
    /// A user touched `product` with this co-occurrence weight.
    fn touched(&mut self, product: ProductId, weight: u64);
    /// `product.created` (name and category) or `product.updated` (stock only).
    fn catalogue(
        &mut self,
        product: ProductId,
        name: Option<&str>,
        category: Option<&Category>,
        stock: i64,
    );
}

/// For applying without a product-keyed view (tests, benchmarks, the
/// evaluation's single state).
pub struct NoSink;

impl ItemSink for NoSink {
    fn cooccurrence(&mut self, _: ProductId, _: ProductId, _: i64) {}
    fn touched(&mut self, _: ProductId, _: u64) {}
    fn catalogue(&mut self, _: ProductId, _: Option<&str>, _: Option<&Category>, _: i64) {}
}

/// What the catalogue says about a product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    pub name: Option<String>,
    pub category: Option<Category>,
    /// `None` until a `product.created` or `product.updated` was seen.
    pub stock: Option<i64>,
}

impl CatalogueEntry {
    /// Folds another source's view in: what this one lacks, the other fills.
    pub fn merge(&mut self, other: CatalogueEntry) {
        if self.stock.is_none() {
            self.stock = other.stock;
        }
        if self.name.is_none() {
            self.name = other.name;
        }
        if self.category.is_none() {
            self.category = other.category;
        }
    }

    pub fn recommendable(&self) -> bool {
        self.stock.is_some_and(|stock| stock > 0)
    }
}

#[derive(Debug, Default)]
struct Stripe {
    /// Neighbours by dense index (see [`Interner`]): a query adds into a
    /// plain array instead of hashing every neighbour of every seed.
    neighbours: FastMap<ProductId, NeighbourSums>,
    touch: FastMap<ProductId, u64>,
    catalogue: FastMap<ProductId, CatalogueEntry>,
}

const STRIPES: usize = 64;

/// Marks a product without an index yet while an event's changes are
/// interned (the interner would need four billion products to reach it).
const NOT_INTERNED: u32 = u32::MAX;

/// Dense indexes for products, handed out on first sight and never reused.
#[derive(Debug, Default)]
struct Interner {
    indexes: FastMap<ProductId, u32>,
    products: Vec<ProductId>,
}

#[derive(Debug)]
pub struct ItemGraph {
    stripes: Box<[Mutex<Stripe>]>,
    interner: RwLock<Interner>,
}

impl Default for ItemGraph {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            interner: RwLock::default(),
        }
    }
}

impl ItemGraph {
    /// The sum of `states`' product-keyed parts.
    pub fn from_states<'a>(states: impl IntoIterator<Item = &'a PartitionState>) -> Self {
        let graph = Self::default();
        for state in states {
            let mut sink = &graph;
            for (&x, neighbours) in &state.cooccurrence {
                for (&y, &w) in neighbours {
                    sink.cooccurrence(x, y, w as i64);
                }
            }
            for (&product, aggregate) in &state.products {
                if aggregate.touch_weight > 0 {
                    sink.touched(product, aggregate.touch_weight);
                }
                if let Some(stock) = aggregate.stock {
                    sink.catalogue(
                        product,
                        aggregate.name.as_deref(),
                        aggregate.category.as_ref(),
                        stock,
                    );
                }
            }
        }
        graph
    }

    fn stripe(&self, product: &ProductId) -> MutexGuard<'_, Stripe> {
        let index = FastBuild::default().hash_one(product) as usize % STRIPES;
        // A panic while holding a stripe leaves sums that are still whole
        // numbers; serving them beats failing every later request.
        self.stripes[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn index_of(&self, product: ProductId) -> u32 {
        if let Some(&index) = self.interner().indexes.get(&product) {
            return index;
        }
        let mut interner = self
            .interner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = interner.products.len() as u32;
        let index = *interner.indexes.entry(product).or_insert(next);
        if index == next {
            interner.products.push(product);
        }
        index
    }

    fn interner(&self) -> std::sync::RwLockReadGuard<'_, Interner> {
        self.interner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Products known so far; indexes are below this.
    pub fn product_count(&self) -> usize {
        self.interner().products.len()
    }

    /// Calls `read` with the product of each index (one lock for all).
    pub fn with_products<R>(&self, read: impl FnOnce(&[ProductId]) -> R) -> R {
        read(&self.interner().products)
    }

    pub fn touch_weight(&self, product: &ProductId) -> u64 {
        self.stripe(product)
            .touch
            .get(product)
            .copied()
            .unwrap_or(0)
    }

    /// Calls `read` with the neighbours of `product` by dense index (if
    /// any), under its stripe.
    pub fn with_neighbours<R>(
        &self,
        product: &ProductId,
        read: impl FnOnce(Option<&NeighbourSums>) -> R,
    ) -> R {
        read(self.stripe(product).neighbours.get(product))
    }

    pub fn catalogue_entry(&self, product: &ProductId) -> Option<CatalogueEntry> {
        self.stripe(product).catalogue.get(product).cloned()
    }

    /// Applies one event's co-occurrence changes together: the products are
    /// interned under one lock and the changes to one product's list share
    /// one stripe lock and one lookup (an event changes up to twice the
    /// co-occurrence window, half of them in the touched product's list).
    /// Same result as applying them one by one. `indexes` is scratch space.
    fn apply_grouped(&self, deltas: &mut [(ProductId, ProductId, i64)], indexes: &mut Vec<u32>) {
        if deltas.is_empty() {
            return;
        }
        // Stable: a pruning after an add in the same list must stay after it.
        deltas.sort_by_key(|&(x, _, _)| x);
        indexes.clear();
        {
            // The other half of the changes all name the touched product as
            // their neighbour: one lookup serves a run of them.
            let interner = self.interner();
            let mut last: Option<(ProductId, u32)> = None;
            indexes.extend(deltas.iter().map(|&(_, y, _)| match last {
                Some((product, index)) if product == y => index,
                _ => {
                    let index = interner.indexes.get(&y).copied().unwrap_or(NOT_INTERNED);
                    last = Some((y, index));
                    index
                }
            }));
        }
        // Products seen for the first time, under the interner's write lock.
        for (index, &(_, y, _)) in indexes.iter_mut().zip(deltas.iter()) {
            if *index == NOT_INTERNED {
                *index = self.index_of(y);
            }
        }
        let mut start = 0;
        while start < deltas.len() {
            let x = deltas[start].0;
            let end = start + deltas[start..].iter().take_while(|d| d.0 == x).count();
            let mut stripe = self.stripe(&x);
            let neighbours = stripe.neighbours.entry(x).or_default();
            for (&(_, _, delta), &y) in deltas[start..end].iter().zip(&indexes[start..end]) {
                neighbours.add(y, delta);
            }
            if neighbours.is_empty() {
                stripe.neighbours.remove(&x);
            }
            start = end;
        }
    }

    /// Every product-keyed figure, for comparisons in tests.
    pub fn totals(&self) -> ItemTotals {
        let mut totals = ItemTotals::default();
        let interner = self.interner();
        for stripe in &self.stripes {
            let stripe = stripe
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (&x, neighbours) in &stripe.neighbours {
                totals.cooccurrence.extend(
                    neighbours
                        .iter()
                        .map(|(y, w)| ((x, interner.products[y as usize]), w)),
                );
            }
            totals
                .touch
                .extend(stripe.touch.iter().map(|(&p, &w)| (p, w)));
        }
        totals
    }
}

/// Buffers a [`GroupedSink`] reuses from one event to the next, so that
/// applying an event allocates nothing once they have grown.
#[derive(Debug, Default)]
pub struct GroupBuffers {
    pending: Vec<(ProductId, ProductId, i64)>,
    indexes: Vec<u32>,
}

/// The graph as one event's writer: co-occurrence changes are buffered and
/// applied together by [`finish`](Self::finish) (one lock per touched list,
/// see `apply_grouped`); the rest goes straight through.
pub struct GroupedSink<'a> {
    items: &'a ItemGraph,
    buffers: &'a mut GroupBuffers,
}

impl<'a> GroupedSink<'a> {
    pub fn new(items: &'a ItemGraph, buffers: &'a mut GroupBuffers) -> Self {
        buffers.pending.clear();
        Self { items, buffers }
    }

    /// Applies the buffered co-occurrence changes.
    pub fn finish(self) {
        let GroupBuffers { pending, indexes } = self.buffers;
        self.items.apply_grouped(pending, indexes);
        pending.clear();
    }
}

impl ItemSink for GroupedSink<'_> {
    fn cooccurrence(&mut self, x: ProductId, y: ProductId, delta: i64) {
        self.buffers.pending.push((x, y, delta));
    }

    fn touched(&mut self, product: ProductId, weight: u64) {
        let mut items = self.items;
        items.touched(product, weight);
    }

    fn catalogue(
        &mut self,
        product: ProductId,
        name: Option<&str>,
        category: Option<&Category>,
        stock: i64,
    ) {
        let mut items = self.items;
        items.catalogue(product, name, category, stock);
    }
}

/// Plain sums, comparable across a graph and a recomputation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ItemTotals {
    pub cooccurrence: std::collections::BTreeMap<(ProductId, ProductId), u64>,
    pub touch: std::collections::BTreeMap<ProductId, u64>,
}

impl ItemSink for &ItemGraph {
    fn cooccurrence(&mut self, x: ProductId, y: ProductId, delta: i64) {
        let y = self.index_of(y);
        let mut stripe = self.stripe(&x);
        let neighbours = stripe.neighbours.entry(x).or_default();
        neighbours.add(y, delta);
        if neighbours.is_empty() {
            stripe.neighbours.remove(&x);
        }
    }

    fn touched(&mut self, product: ProductId, weight: u64) {
        *self.stripe(&product).touch.entry(product).or_default() += weight;
    }

    fn catalogue(
        &mut self,
        product: ProductId,
        name: Option<&str>,
        category: Option<&Category>,
        stock: i64,
    ) {
        let mut stripe = self.stripe(&product);
        let entry = stripe.catalogue.entry(product).or_default();
        if let Some(name) = name {
            entry.name = Some(name.to_owned());
        }
        if let Some(category) = category {
            entry.category = Some(category.clone());
        }
        entry.stock = Some(stock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AggregateSettings;
    use shopmesh_shared::testkit::sample_events;

    #[test]
    fn live_updates_equal_a_rebuild_from_the_states() {
        // Small neighbour lists so that pruning (negative deltas) happens.
        let config = AggregateSettings {
            neighbours: 1,
            ..AggregateSettings::default()
        };
        let live = ItemGraph::default();
        let mut states = [PartitionState::default(), PartitionState::default()];
        for round in 0..3u64 {
            for (n, event) in sample_events().iter().enumerate() {
                let state = &mut states[n % 2];
                state.apply_with(round * 100 + n as u64 + 1, event, &config, &mut &live);
            }
        }
        let rebuilt = ItemGraph::from_states(&states);
        assert_eq!(live.totals(), rebuilt.totals());
        // Grouped application (what the actors do) gives the same sums.
        let grouped = ItemGraph::default();
        let mut buffers = GroupBuffers::default();
        let mut sink = GroupedSink::new(&grouped, &mut buffers);
        for (&(x, y), &w) in &live.totals().cooccurrence {
            sink.cooccurrence(x, y, w as i64 + 2);
            sink.cooccurrence(x, y, -2);
        }
        sink.finish();
        assert_eq!(grouped.totals().cooccurrence, live.totals().cooccurrence);
        assert!(!live.totals().cooccurrence.is_empty());
    }
}
