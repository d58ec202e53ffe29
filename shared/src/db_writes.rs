//! One writer at a time, queued in the process: the [`WriteGate`].
//!
//! SQLite lets one connection write at a time. A writer that finds the write
//! lock taken sleeps in SQLite's busy handler (1, 2, 5, 10, ... up to 100 ms
//! between tries, whoever comes first when it wakes wins) while it holds one
//! of the pool's connections. Under `shopmesh load` that made a rating wait a
//! median 10 ms, p90 49 ms, for its `BEGIN IMMEDIATE`, and the reads that
//! followed queued behind the connections the sleepers held. The gate queues
//! a service's writers before they take a connection, first come first
//! served (tokio's mutex is fair), so each starts as soon as the one before
//! it is done and the other connections stay free for reads. The busy
//! handler stays as the backstop for writers outside the process.
//!
//! Every write of a service goes through its gate: transactions that will
//! write begin with [`WriteGate::begin`], single statements run
//! [`WriteGate::in_turn`]. Postgres locks rows, not the database, so there the
//! gate lets everything through at once.

use crate::db::DatabaseKind;
use crate::metrics::metrics;
use sqlx::{Any, AnyPool, Transaction};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A service's queue of writers; cheap to clone, clones share the queue.
#[derive(Debug, Clone)]
pub struct WriteGate {
    /// `Some` on SQLite; `None` on Postgres: no queue.
    queue: Option<Arc<Mutex<()>>>,
}

impl WriteGate {
    pub fn new(kind: DatabaseKind) -> Self {
        let queue = (kind == DatabaseKind::Sqlite).then(Arc::default);
        Self { queue }
    }

    /// Runs `write` (a statement outside a transaction) in turn.
    pub async fn in_turn<T>(&self, write: impl Future<Output = T>) -> T {
        let _turn = self.turn().await;
        write.await
    }

    /// Waits for this writer's turn; the turn lasts until the value is
    /// dropped. The wait is recorded in `shopmesh_db_write_wait_seconds`.
    pub async fn turn(&self) -> WriteTurn {
        let Some(queue) = &self.queue else {
            return WriteTurn { _held: None };
        };
        let asked = Instant::now();
        let held = queue.clone().lock_owned().await;
        metrics()
            .db_write_wait
            .observe(asked.elapsed().as_secs_f64());
        WriteTurn { _held: Some(held) }
    }

    /// Starts a transaction that will write, in turn. On SQLite it takes the
    /// write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that
    /// read first cannot upgrade to a writer while another commits, and fails
    /// with "database is locked" instead of waiting. Postgres locks rows as
    /// it goes.
    pub async fn begin(&self, pool: &AnyPool) -> sqlx::Result<WriteTransaction> {
        let turn = self.turn().await;
        let transaction = match self.queue {
            Some(_) => pool.begin_with("BEGIN IMMEDIATE").await?,
            None => pool.begin().await?,
        };
        Ok(WriteTransaction {
            transaction: Some(transaction),
            turn: Some(turn),
        })
    }
}

/// A writer's turn at the gate.
#[must_use = "the turn ends when this is dropped"]
pub struct WriteTurn {
    _held: Option<OwnedMutexGuard<()>>,
}

/// A transaction begun in turn; the turn ends with it. Use it as the
/// `sqlx::Transaction` it wraps.
pub struct WriteTransaction {
    /// Both `Some` until `commit` or drop.
    transaction: Option<Transaction<'static, Any>>,
    turn: Option<WriteTurn>,
}

impl WriteTransaction {
    pub async fn commit(mut self) -> sqlx::Result<()> {
        let transaction = self.transaction.take().expect("present until commit");
        transaction.commit().await
        // The turn ends here, with `self`.
    }

    pub async fn rollback(mut self) -> sqlx::Result<()> {
        let transaction = self.transaction.take().expect("present until commit");
        transaction.rollback().await
    }
}

impl Drop for WriteTransaction {
    /// Not committed (an error on the way, usually): roll back, then end the
    /// turn. sqlx's own drop only queues the rollback on the connection, so
    /// the next writer could reach SQLite before it ran and find the lock
    /// taken; a task runs it and keeps the turn until it is done.
    fn drop(&mut self) {
        let (Some(transaction), turn) = (self.transaction.take(), self.turn.take()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = transaction.rollback().await;
                drop(turn);
            });
        }
    }
}

impl Deref for WriteTransaction {
    type Target = Transaction<'static, Any>;

    fn deref(&self) -> &Self::Target {
        self.transaction.as_ref().expect("present until commit")
    }
}

impl DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.transaction.as_mut().expect("present until commit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use sqlx::Executor;
    use sqlx::any::AnyPoolOptions;

    /// A SQLite pool of four connections whose busy handler never waits: a
    /// writer that meets the write lock taken fails at once.
    async fn impatient_pool(dir: &tempfile::TempDir) -> AnyPool {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("gate.db").display());
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 0").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .unwrap();
        pool.execute("CREATE TABLE rows (writer BIGINT NOT NULL, step BIGINT NOT NULL)")
            .await
            .unwrap();
        pool
    }

    fn locked(error: &sqlx::Error) -> bool {
        error.to_string().contains("database is locked")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_in_turn_never_meet_the_write_lock_taken() {
        let dir = tempfile::tempdir().unwrap();
        let pool = impatient_pool(&dir).await;

        // Without the gate two writers collide: the second fails at once.
        let first = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let second = pool.begin_with("BEGIN IMMEDIATE").await;
        assert!(matches!(&second, Err(e) if locked(e)), "{second:?}");
        drop(first);

        // Through the gate, 32 concurrent writers (each holding its
        // transaction open over several statements) all get through, and
        // single statements in turn interleave with them.
        let gate = WriteGate::new(DatabaseKind::Sqlite);
        let waits_before = metrics().db_write_wait.get_sample_count();
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..32i64 {
            let (gate, pool) = (gate.clone(), pool.clone());
            writers.spawn(async move {
                if writer % 4 == 0 {
                    let insert = sqlx::query("INSERT INTO rows (writer, step) VALUES ($1, 0)")
                        .bind(writer)
                        .execute(&pool);
                    gate.in_turn(insert).await?;
                    return Ok::<_, sqlx::Error>(());
                }
                let mut tx = gate.begin(&pool).await?;
                for step in 0..3i64 {
                    sqlx::query("INSERT INTO rows (writer, step) VALUES ($1, $2)")
                        .bind(writer)
                        .bind(step)
                        .execute(&mut **tx)
                        .await?;
                    tokio::task::yield_now().await;
                }
                tx.commit().await
            });
        }
        while let Some(outcome) = writers.join_next().await {
            outcome.unwrap().unwrap();
        }
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rows")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 8 + 24 * 3);
        // Every turn's wait is in the histogram (other tests may add more).
        assert!(metrics().db_write_wait.get_sample_count() >= waits_before + 32);
    }

    #[tokio::test]
    async fn a_dropped_transaction_rolls_back_and_ends_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let pool = impatient_pool(&dir).await;
        let gate = WriteGate::new(DatabaseKind::Sqlite);
        let mut tx = gate.begin(&pool).await.unwrap();
        sqlx::query("INSERT INTO rows (writer, step) VALUES (1, 1)")
            .execute(&mut **tx)
            .await
            .unwrap();
        drop(tx);
        // The turn comes back once the rollback ran (this would wait for
        // ever otherwise), so the next writer finds the lock free and the
        // row gone.
        let mut tx = gate.begin(&pool).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rows")
            .fetch_one(&mut **tx)
            .await
            .unwrap();
        assert_eq!(rows, 0);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn postgres_writers_do_not_queue() {
        let gate = WriteGate::new(DatabaseKind::Postgres);
        let first = gate.turn().await;
        // A second turn while the first is held: no queue, no wait.
        let second = gate.turn().now_or_never();
        assert!(second.is_some());
        drop(first);
        let sqlite = WriteGate::new(DatabaseKind::Sqlite);
        let held = sqlite.turn().await;
        assert!(sqlite.turn().now_or_never().is_none());
        drop(held);
        assert!(sqlite.turn().now_or_never().is_some());
    }
}
