//! Recently read catalogue data, kept for a short time. Reads are most of
//! the catalogue's traffic (`GET /products/{id}`, `GET /products`, the
//! lookup RPC), and each one through the pool is a hop to the database's
//! worker thread and back, twice (the query, then sqlx's check when the
//! connection goes back); a listing also counts and sorts the matching rows.
//! Measured under `shopmesh load`, that was more of the service's CPU than
//! the rest of the request.
//!
//! Two caches: products by id, and listings (a page's product ids and the
//! total, per query). A listing depends only on names and categories, which
//! never change, and on which products exist, which only a create changes;
//! so a stock or price change forgets the product alone, and a page shows it
//! at once because its items are read through the product cache.
//!
//! Freshness: this instance forgets what a change touches as soon as it has
//! committed it (create, update, rating, reservation, release), so its own
//! writes are seen at once; it then reads the changed products again and
//! keeps them (`catalogue::changed`), under a ticket like any read. A change
//! committed by another instance (several replicas behind a load balancer)
//! is seen once the entry expires, after at most the time to live (`SHOPMESH_PRODUCT_CACHE_TTL`). Checkout never
//! trusts these copies: a reservation takes stock in the database.

use crate::domain::{ListQuery, Product};
use shopmesh_shared::events::ProductId;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::Duration;
use tokio::time::Instant;

/// Products kept at most (~150 bytes each); a larger catalogue is cached in
/// part.
pub const MAX_PRODUCTS: usize = 100_000;

/// Listings kept at most. Fewer: a page holds up to 100 ids, and searches
/// are as varied as their text, so this bounds the memory the listing
/// cache can take (~2 KiB per full page) whatever clients send.
pub const MAX_LISTINGS: usize = 10_000;

/// Products by id.
pub type ProductCache = TtlCache<ProductId, Product>;

/// Listings by query.
pub type ListingCache = TtlCache<ListQuery, Listing>;

/// One page of a listing: its products' ids in order, and how many match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub ids: Vec<ProductId>,
    pub total: i64,
}

/// Values that expire `ttl` after they were stored, and that a change
/// committed while they were being read never lets in.
pub struct TtlCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    inner: RwLock<Inner<K, V>>,
}

struct Inner<K, V> {
    /// Bumped by every forget.
    generation: u64,
    /// Reads that started before this generation store nothing: everything
    /// was forgotten since they started.
    floor: u64,
    entries: HashMap<K, Slot<V>>,
}

enum Slot<V> {
    Kept {
        value: V,
        expires: Instant,
        /// When this key was last forgotten (0: never). A read that started
        /// before then still holds rows older than the change, even once a
        /// newer read has stored this copy: it must not replace it.
        forgotten_at: u64,
    },
    /// Forgotten at this generation: a read that started before it may hold
    /// the old rows, and must not store them. Per key, so that a busy
    /// instance's stream of stock changes does not turn away the reads of
    /// every other product.
    Forgotten { at: u64 },
}

impl<K: Hash + Eq, V> Inner<K, V> {
    /// When `key` was last forgotten (0 if never since it was stored);
    /// `None` when nothing is known of it.
    fn forgotten_at(&self, key: &K) -> Option<u64> {
        match self.entries.get(key)? {
            Slot::Forgotten { at }
            | Slot::Kept {
                forgotten_at: at, ..
            } => Some(*at),
        }
    }
}

/// Where a read stands: taken before the database is read, handed back with
/// what it read to [`TtlCache::store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTicket(u64);

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A cache of at most `max_entries` whose entries live `ttl`;
    /// `Duration::ZERO` keeps nothing.
    pub fn with_capacity(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            inner: RwLock::new(Inner {
                generation: 0,
                floor: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// False with a zero time to live: nothing is kept.
    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The value if a fresh copy is here.
    pub fn get(&self, key: &K) -> Option<V> {
        if !self.is_enabled() {
            return None;
        }
        let now = Instant::now();
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match inner.entries.get(key) {
            Some(Slot::Kept { value, expires, .. }) if *expires > now => Some(value.clone()),
            _ => None,
        }
    }

    /// To be taken before reading the database for [`TtlCache::store`].
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(
            self.inner
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .generation,
        )
    }

    /// Whether `key` was forgotten since `ticket` was taken: a read begun
    /// under it may hold what the change replaced.
    pub fn changed_since(&self, key: &K, ticket: ReadTicket) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        ticket.0 < inner.floor || inner.forgotten_at(key).is_some_and(|at| at > ticket.0)
    }

    /// Keeps values read from the database under `ticket`, except those
    /// forgotten since the ticket was taken (they may predate the change).
    pub fn store(&self, ticket: ReadTicket, values: impl IntoIterator<Item = (K, V)>) {
        if !self.is_enabled() {
            return;
        }
        let now = Instant::now();
        let expires = now + self.ttl;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for (key, value) in values {
            if ticket.0 < inner.floor {
                return;
            }
            let forgotten_at = match inner.forgotten_at(&key) {
                Some(at) => at,
                None if inner.entries.len() >= self.max_entries => {
                    // Full: expired values make room, for later reads. The
                    // forgotten marks go too, so every read in flight, this
                    // one included, is turned away as after forget_all.
                    inner.entries.retain(
                        |_, slot| matches!(slot, Slot::Kept { expires, .. } if *expires > now),
                    );
                    inner.generation += 1;
                    inner.floor = inner.generation;
                    return;
                }
                None => 0,
            };
            if forgotten_at > ticket.0 {
                continue;
            }
            inner.entries.insert(
                key,
                Slot::Kept {
                    value,
                    expires,
                    forgotten_at,
                },
            );
        }
    }

    /// Drops these entries, after a change to them has committed.
    pub fn forget<'a>(&self, keys: impl IntoIterator<Item = &'a K>)
    where
        K: Clone + 'a,
    {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        let at = inner.generation;
        for key in keys {
            inner.entries.insert(key.clone(), Slot::Forgotten { at });
        }
    }

    /// Drops every entry, after a change that may touch any of them.
    pub fn forget_all(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.generation += 1;
        inner.floor = inner.generation;
        inner.entries.clear();
    }

    /// Values held, fresh or not.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .values()
            .filter(|slot| matches!(slot, Slot::Kept { .. }))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopmesh_shared::events::Category;

    fn product(stock: i64) -> Product {
        Product {
            id: ProductId::new_v7(),
            name: "Teapot".into(),
            category: Category::parse("kitchen").unwrap(),
            price_cents: 1999,
            stock,
            rating_count: 0,
            rating_sum: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_lives_for_the_time_to_live() {
        let cache = ProductCache::with_capacity(Duration::from_secs(2), MAX_PRODUCTS);
        let teapot = product(5);
        cache.store(cache.ticket(), [(teapot.id, teapot.clone())]);
        assert_eq!(cache.get(&teapot.id), Some(teapot.clone()));
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert_eq!(cache.get(&teapot.id), Some(teapot.clone()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get(&teapot.id), None);
    }

    #[test]
    fn a_forgotten_product_is_read_again() {
        let cache = ProductCache::with_capacity(Duration::from_secs(60), MAX_PRODUCTS);
        let (teapot, kettle) = (product(5), product(7));
        cache.store(
            cache.ticket(),
            [(teapot.id, teapot.clone()), (kettle.id, kettle.clone())],
        );
        cache.forget([&teapot.id]);
        assert_eq!(cache.get(&teapot.id), None);
        assert_eq!(cache.get(&kettle.id), Some(kettle));
    }

    #[test]
    fn a_read_that_started_before_a_change_is_not_kept() {
        let cache = ProductCache::with_capacity(Duration::from_secs(60), MAX_PRODUCTS);
        let before = product(5);
        let ticket = cache.ticket();
        // The change commits and is forgotten while the read is in flight...
        cache.forget([&before.id]);
        // ...so the row the read returns may be the old one: not kept.
        cache.store(ticket, [(before.id, before.clone())]);
        assert_eq!(cache.get(&before.id), None);
        cache.store(cache.ticket(), [(before.id, before.clone())]);
        assert_eq!(cache.get(&before.id), Some(before));
    }

    #[test]
    fn a_read_from_before_a_change_cannot_replace_a_newer_copy() {
        let cache = ProductCache::with_capacity(Duration::from_secs(60), MAX_PRODUCTS);
        let (old, new) = (product(5), product(4));
        let new = Product { id: old.id, ..new };
        let slow_read = cache.ticket();
        cache.forget([&old.id]);
        // A read that started after the change stores the new row first...
        cache.store(cache.ticket(), [(new.id, new.clone())]);
        // ...then the slow one, which may hold the row from before, ends.
        cache.store(slow_read, [(old.id, old.clone())]);
        assert_eq!(cache.get(&old.id), Some(new));
    }

    #[test]
    fn a_change_turns_away_only_reads_of_what_it_changed() {
        let cache = ProductCache::with_capacity(Duration::from_secs(60), MAX_PRODUCTS);
        let (teapot, kettle) = (product(5), product(7));
        let ticket = cache.ticket();
        cache.forget([&teapot.id]);
        cache.store(
            ticket,
            [(teapot.id, teapot.clone()), (kettle.id, kettle.clone())],
        );
        assert_eq!(cache.get(&teapot.id), None);
        assert_eq!(cache.get(&kettle.id), Some(kettle));
    }

    #[test]
    fn forgetting_everything_also_refuses_reads_in_flight() {
        let listings = ListingCache::with_capacity(Duration::from_secs(60), MAX_LISTINGS);
        let query = ListQuery::default();
        let listing = Listing {
            ids: vec![ProductId::new_v7()],
            total: 1,
        };
        listings.store(listings.ticket(), [(query.clone(), listing.clone())]);
        let in_flight = listings.ticket();
        listings.forget_all();
        assert_eq!(listings.get(&query), None);
        listings.store(in_flight, [(query.clone(), listing.clone())]);
        assert_eq!(listings.get(&query), None);
        listings.store(listings.ticket(), [(query.clone(), listing.clone())]);
        assert_eq!(listings.get(&query), Some(listing));
    }

    #[test]
    fn a_zero_time_to_live_keeps_nothing() {
        let cache = ProductCache::with_capacity(Duration::ZERO, MAX_PRODUCTS);
        let teapot = product(5);
        cache.store(cache.ticket(), [(teapot.id, teapot.clone())]);
        assert_eq!(cache.get(&teapot.id), None);
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_makes_room_from_expired_entries_only() {
        let cache = ProductCache::with_capacity(Duration::from_secs(1), 2);
        let (a, b, c) = (product(1), product(2), product(3));
        cache.store(cache.ticket(), [(a.id, a.clone()), (b.id, b.clone())]);
        cache.store(cache.ticket(), [(c.id, c.clone())]);
        assert_eq!(cache.get(&c.id), None, "no room while both are fresh");
        assert_eq!(cache.len(), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        let in_flight = cache.ticket();
        cache.store(cache.ticket(), [(c.id, c.clone())]);
        assert_eq!(cache.len(), 0, "the expired entries made room");
        cache.store(in_flight, [(c.id, c.clone())]);
        assert_eq!(cache.get(&c.id), None, "reads in flight are turned away");
        cache.store(cache.ticket(), [(c.id, c.clone())]);
        assert_eq!(cache.get(&c.id), Some(c));
        assert_eq!(cache.len(), 1);
    }
}
