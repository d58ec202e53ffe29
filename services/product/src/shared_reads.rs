//! One database read for everyone who misses the same key at once. When a
//! change forgets a popular product, every request for it until a fresh
//! copy is stored would otherwise read it again: under `shopmesh load`,
//! 78% of the product cache's misses found a read of the same product
//! already in flight.
//!
//! Freshness: a caller joins a read in flight only if the cache has not
//! forgotten the key since that read's ticket was taken. A read that started
//! before a committed change is therefore never handed to a request that
//! arrived after the change was forgotten (the writer forgets before it
//! answers); such a request starts its own read.

use crate::cache::{ReadTicket, TtlCache};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// A read's outcome as every caller sharing it gets it.
pub type SharedOutcome<R> = Result<R, SharedError>;

/// A shared read's error, as each caller gets it: it displays as the read's
/// error did and keeps that error's causes, so a database outage is still
/// told from a refused query (`db_outage::caused_by_outage`).
#[derive(Debug, Clone)]
pub struct SharedError(Arc<anyhow::Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

type InFlight<R> = Shared<BoxFuture<'static, SharedOutcome<R>>>;

/// Reads in flight by key.
pub struct SharedReads<K, R> {
    in_flight: Mutex<HashMap<K, (ReadTicket, InFlight<R>)>>,
}

impl<K, R> Default for SharedReads<K, R> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, R: Clone + Send + Sync + 'static> SharedReads<K, R> {
    /// The outcome of a read of `key`: one already in flight that `cache`
    /// has not forgotten `key` since, or else a new one, `read(ticket)`,
    /// with the ticket taken before it began (to store what it reads).
    pub async fn read<V, F>(
        &self,
        cache: &TtlCache<K, V>,
        key: &K,
        read: impl FnOnce(ReadTicket) -> F,
    ) -> SharedOutcome<R>
    where
        V: Clone,
        F: Future<Output = anyhow::Result<R>> + Send + 'static,
    {
        let shared = {
            let mut in_flight = self.lock();
            match in_flight.get(key) {
                Some((ticket, shared)) if !cache.changed_since(key, *ticket) => shared.clone(),
                _ => {
                    // Taken before the read can start: the future is lazy
                    // and first polled below.
                    let ticket = cache.ticket();
                    let shared = read(ticket)
                        .map(|outcome| outcome.map_err(|e| SharedError(Arc::new(e))))
                        .boxed()
                        .shared();
                    in_flight.insert(key.clone(), (ticket, shared.clone()));
                    shared
                }
            }
        };
        let outcome = shared.clone().await;
        // Whoever finishes first clears the entry, unless a newer read of
        // the key has replaced it meanwhile.
        let mut in_flight = self.lock();
        if in_flight
            .get(key)
            .is_some_and(|(_, current)| current.ptr_eq(&shared))
        {
            in_flight.remove(key);
        }
        outcome
    }

    /// Reads in flight now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (ReadTicket, InFlight<R>)>> {
        // The map only ever holds whole entries: usable after a panic.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MAX_PRODUCTS;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::oneshot;

    type Cache = TtlCache<u32, u32>;

    /// A read that counts itself and answers `value` once `release` fires.
    fn gated_read(
        reads: &Arc<AtomicUsize>,
        release: oneshot::Receiver<()>,
        value: u32,
    ) -> impl FnOnce(ReadTicket) -> BoxFuture<'static, anyhow::Result<u32>> {
        let reads = reads.clone();
        move |_| {
            reads.fetch_add(1, Ordering::SeqCst);
            async move {
                release.await.ok();
                Ok(value)
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn callers_missing_the_same_key_at_once_share_one_read() {
        let cache = Cache::with_capacity(Duration::from_secs(60), MAX_PRODUCTS);
        let shared: SharedReads<u32, u32> = SharedReads::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let (release, gate) = oneshot::channel();
        let (_, never) = oneshot::channel::<()>();
        let first = shared.read(&cache, &7, gated_read(&reads, gate, 1));
        let second = shared.read(&cache, &7, gated_read(&reads, never, 2));
        let release_after_both_joined = async {
            tokio::task::yield_now().await;
            release.send(()).unwrap();
        };
        let (a, b, ()) = tokio::join!(first, second, release_after_both_joined);
        assert_eq!((a.unwrap(), b.unwrap()), (1, 1));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(shared.is_empty(), "a finished read is not kept");
    }

    #[tokio::test]
    async fn a_caller_after_a_change_does_not_join_a_read_from_before_it() {
        let cache = Cache::with_capacity(Duration::from_secs(60), MAX_PRODUCTS);
        let shared: SharedReads<u32, u32> = SharedReads::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let (release_old, old_gate) = oneshot::channel();
        let (release_new, new_gate) = oneshot::channel();
        let before_change = shared.read(&cache, &7, gated_read(&reads, old_gate, 1));
        let after_change = async {
            // The first read is in flight; then the change commits and is
            // forgotten, then this caller misses the key.
            tokio::task::yield_now().await;
            cache.forget([&7]);
            shared
                .read(&cache, &7, gated_read(&reads, new_gate, 2))
                .await
        };
        let release = async {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            release_old.send(()).unwrap();
            release_new.send(()).unwrap();
        };
        let (old, new, ()) = tokio::join!(before_change, after_change, release);
        assert_eq!((old.unwrap(), new.unwrap()), (1, 2));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        assert!(shared.is_empty());
    }

    #[tokio::test]
    async fn a_failed_read_fails_every_caller_sharing_it_and_is_not_kept() {
        let cache = Cache::with_capacity(Duration::from_secs(60), MAX_PRODUCTS);
        let shared: SharedReads<u32, u32> = SharedReads::default();
        let outcome = shared
            .read(&cache, &7, |_| async { anyhow::bail!("database gone") })
            .await;
        assert_eq!(outcome.unwrap_err().to_string(), "database gone");
        assert!(shared.is_empty());
        // Causes stay reachable: an outage is still an outage.
        let outcome = shared
            .read(&cache, &7, |_| async {
                Err(anyhow::Error::new(sqlx::Error::PoolTimedOut).context("read product"))
            })
            .await;
        let error = anyhow::Error::new(outcome.unwrap_err());
        assert_eq!(error.to_string(), "read product");
        assert!(shopmesh_shared::db_outage::caused_by_outage(&error));
        let outcome = shared.read(&cache, &7, |_| async { Ok(3) }).await;
        assert_eq!(outcome.unwrap(), 3);
    }
}
