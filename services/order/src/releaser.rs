//! Gives back the stock of checkouts that failed after the reservation was
//! asked for.
//!
//! A reservation whose answer was lost (NATS or the product service slow or
//! away) may have been made: its order then never exists, and the stock would
//! stay reserved for ever. The checkout records such an order in
//! `pending_releases` (see [`queue_release`]); this task asks the product
//! service to release each one, which is idempotent, and forgets the row only
//! when the product service answered. It retries without giving up, with a
//! capped backoff, and the rows outlive a restart.

use crate::catalog::Catalog;
use crate::storage::releases;
use shopmesh_shared::db_writes::WriteGate;
use shopmesh_shared::events::{OrderId, Timestamp};
use shopmesh_shared::metrics::metrics;
use sqlx::AnyPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The first wait after a failed round; it doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// With nothing known to be pending: how often to look anyway (another
/// replica sharing the database may have recorded rows).
const POLL: Duration = Duration::from_secs(30);
/// Rows released per round.
const BATCH: i64 = 100;

pub struct StockReleaser {
    pool: AnyPool,
    writes: WriteGate,
    catalog: Catalog,
    wake: Arc<Notify>,
}

impl StockReleaser {
    pub fn new(pool: AnyPool, writes: WriteGate, catalog: Catalog) -> Self {
        Self {
            pool,
            writes,
            catalog,
            wake: Arc::default(),
        }
    }

    /// Wake it after recording a pending release.
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Releases what is pending until `shutdown`; what a stop interrupts
    /// stays recorded for the next start.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut retry = RETRY_MIN;
        loop {
            let round = tokio::select! {
                _ = shutdown.cancelled() => return,
                round = self.release_pending() => round,
            };
            if let Ok(waiting) = releases::count(&self.pool).await {
                metrics().pending_releases.set(waiting);
            }
            let wait = match round {
                Ok(Round::Drained) => {
                    retry = RETRY_MIN;
                    POLL
                }
                Ok(Round::More) => {
                    retry = RETRY_MIN;
                    Duration::ZERO
                }
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), retry_in = ?retry, "cannot release pending reservations yet");
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    wait
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified(), if retry == RETRY_MIN => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Releases up to a batch, oldest first; stops at the first failure (the
    /// product service is likely away for the others too).
    async fn release_pending(&self) -> anyhow::Result<Round> {
        let orders = releases::pending(&self.pool, BATCH).await?;
        for &order_id in &orders {
            let answer = self.catalog.release(order_id).await?;
            self.writes
                .in_turn(releases::forget(&self.pool, order_id))
                .await?;
            if answer.released {
                tracing::info!(%order_id, "stock of a failed checkout given back");
            }
        }
        Ok(if orders.len() as i64 == BATCH {
            Round::More
        } else {
            Round::Drained
        })
    }
}

enum Round {
    /// Nothing known to be left.
    Drained,
    /// A full batch was released; there may be more.
    More,
}

/// Records that `order_id`'s reservation must be given back, retrying until
/// the database takes the row, then wakes the releaser.
pub async fn queue_release(pool: &AnyPool, writes: &WriteGate, wake: &Notify, order_id: OrderId) {
    let mut retry = RETRY_MIN;
    loop {
        let record = releases::record(pool, order_id, Timestamp::now().as_millis());
        match writes.in_turn(record).await {
            Ok(()) => {
                wake.notify_one();
                return;
            }
            Err(error) => {
                tracing::warn!(%order_id, %error, retry_in = ?retry, "cannot record the pending release yet");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}
