//! The transactional outbox: business events are written in the same database
//! transaction as the change they describe, then relayed to JetStream in
//! insertion order with their event id as `Nats-Msg-Id`.
//!
//! With NATS down, the write still commits and the event waits in the table;
//! the relay publishes it when NATS is back, and the stream's duplicate window
//! drops a re-send of a message whose ack was lost, so each event is stored
//! once. Published rows are kept for `SHOPMESH_OUTBOX_RETENTION` (default 7d)
//! so that a detected loss on the broker side can be re-published from them.
//! The row keeps the traceparent of the request that wrote it, so the relay's
//! publish continues that request's trace.
//!
//! Order: rows are published by sequence. A failed publish switches the relay
//! to one row at a time until one succeeds, so a retry cannot overtake later
//! rows. Several relays on one database (replicas) publish the same rows; the
//! duplicate window makes that harmless inside it.

use crate::db::{DatabaseKind, values_placeholders};
use crate::db_span::traced;
use crate::db_writes::WriteGate;
use crate::events::{EventId, EventType, Timestamp};
use crate::nats::headers::{TraceHeaders, extract_context};
use crate::nats::{EventPublisher, OutboundEvent};
use crate::settings::{Env, SettingsError};
use async_nats::Subject;
use bytes::Bytes;
use opentelemetry::trace::TraceContextExt;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const SQLITE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS shopmesh_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    body BLOB NOT NULL,
    traceparent TEXT NOT NULL,
    tracestate TEXT,
    created_at_ms BIGINT NOT NULL,
    published_at_ms BIGINT,
    stream_sequence BIGINT
)";

const POSTGRES_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS shopmesh_outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    body BYTEA NOT NULL,
    traceparent TEXT NOT NULL,
    tracestate TEXT,
    created_at_ms BIGINT NOT NULL,
    published_at_ms BIGINT,
    stream_sequence BIGINT
)";

const PENDING_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS shopmesh_outbox_pending ON shopmesh_outbox (published_at_ms, seq)";

/// Creates the outbox table if it is missing. The outbox owns its schema, so
/// services need no migration of their own for it.
pub async fn ensure_schema(pool: &AnyPool, kind: DatabaseKind) -> Result<(), sqlx::Error> {
    let table = match kind {
        DatabaseKind::Sqlite => SQLITE_SCHEMA,
        DatabaseKind::Postgres => POSTGRES_SCHEMA,
    };
    sqlx::query(table).execute(traced(pool)).await?;
    sqlx::query(PENDING_INDEX).execute(traced(pool)).await?;
    Ok(())
}

/// Writes `event` into the outbox on `conn`, which must be the caller's open
/// transaction: the event commits or rolls back with the change.
pub async fn enqueue(conn: &mut AnyConnection, event: &OutboundEvent) -> Result<(), sqlx::Error> {
    enqueue_all(conn, std::slice::from_ref(event)).await
}

/// [`enqueue`] for several events, in one statement (one round trip to the
/// database while the transaction holds the write lock); relayed in order.
pub async fn enqueue_all(
    conn: &mut AnyConnection,
    events: &[OutboundEvent],
) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 7;
    // Well under SQLite's and Postgres's limits on parameters.
    for chunk in events.chunks(1_000) {
        let sql = format!(
            "INSERT INTO shopmesh_outbox
                (event_id, event_type, subject, body, traceparent, tracestate, created_at_ms)
             VALUES {}",
            values_placeholders(chunk.len(), COLUMNS)
        );
        // Placeholders only: the text depends on the row count alone.
        let mut insert = sqlx::query(AssertSqlSafe(sql));
        let now = Timestamp::now().as_millis();
        for event in chunk {
            insert = insert
                .bind(event.event_id.to_string())
                .bind(event.event_type.as_str())
                .bind(event.subject.to_string())
                .bind(event.body.to_vec())
                .bind(event.trace.traceparent.clone())
                .bind(event.trace.tracestate.clone())
                .bind(now);
        }
        insert.execute(traced(&mut *conn)).await?;
    }
    Ok(())
}

/// Rows not yet published.
pub async fn backlog(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) FROM shopmesh_outbox WHERE published_at_ms IS NULL")
        .fetch_one(traced(pool))
        .await?;
    row.try_get::<i64, _>(0)
}

/// Rows marked published per statement: two parameters each, well under
/// SQLite's and Postgres's limits on parameters.
const MARK_CHUNK: usize = 500;

/// `UPDATE` marking `rows` rows published: `$1` the time, then each row's
/// `seq` and stream sequence.
fn mark_published_sql(rows: usize) -> String {
    use std::fmt::Write;
    let mut sql =
        String::from("UPDATE shopmesh_outbox SET published_at_ms = $1, stream_sequence = CASE seq");
    for row in 0..rows {
        let _ = write!(sql, " WHEN ${} THEN ${}", 2 + 2 * row, 3 + 2 * row);
    }
    sql.push_str(" END WHERE seq IN (");
    for row in 0..rows {
        let separator = if row == 0 { "" } else { ", " };
        let _ = write!(sql, "{separator}${}", 2 + 2 * row);
    }
    sql.push(')');
    sql
}

/// How the relay polls, batches and keeps rows.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// `SHOPMESH_OUTBOX_POLL`, default 1s: the fallback when no wake-up comes.
    pub poll_interval: Duration,
    /// `SHOPMESH_OUTBOX_BATCH`, default 256 rows per round.
    pub batch: usize,
    /// `SHOPMESH_OUTBOX_RETENTION`, default 7d: how long published rows stay.
    pub retention: Duration,
    /// `SHOPMESH_OUTBOX_DRAIN_TIMEOUT`, default 5s: how long shutdown keeps relaying.
    pub drain_timeout: Duration,
}

impl RelaySettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            poll_interval: env.duration_or("SHOPMESH_OUTBOX_POLL", Duration::from_secs(1))?,
            batch: env.parse_with(
                "SHOPMESH_OUTBOX_BATCH",
                256,
                "a whole number from 1 to 10000",
                |v| v.parse().ok().filter(|n| (1..=10_000).contains(n)),
            )?,
            retention: env
                .duration_or("SHOPMESH_OUTBOX_RETENTION", Duration::from_secs(7 * 86_400))?,
            drain_timeout: env
                .duration_or("SHOPMESH_OUTBOX_DRAIN_TIMEOUT", Duration::from_secs(5))?,
        })
    }

    pub const VARIABLES: &'static [&'static str] = &[
        "SHOPMESH_OUTBOX_POLL",
        "SHOPMESH_OUTBOX_BATCH",
        "SHOPMESH_OUTBOX_RETENTION",
        "SHOPMESH_OUTBOX_DRAIN_TIMEOUT",
    ];
}

/// Counters of one relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub relayed: AtomicU64,
    pub failed_rounds: AtomicU64,
}

/// A row read back from the outbox.
struct PendingRow {
    seq: i64,
    outbound: OutboundEvent,
}

/// The PRODUCER span of one row's publish, a child of the context stored
/// with the row (the request that wrote it), and the row's event carrying
/// that span's context, so that its consumer becomes the span's child: one
/// connected trace from the request, through the relay, to the consumers.
/// Without telemetry the span has no context and the row's headers go as
/// they were stored.
fn producer_span(row: &PendingRow) -> (tracing::Span, OutboundEvent) {
    let outbound = &row.outbound;
    let span = tracing::info_span!(
        "outbox relay",
        otel.name = %format_args!("publish {}", outbound.event_type.as_str()),
        otel.kind = "producer",
        messaging.system = "nats",
        messaging.operation.type = "send",
        messaging.destination.name = %outbound.subject,
        messaging.message.id = %outbound.event_id,
        outbox.seq = row.seq,
    );
    let mut stored = async_nats::HeaderMap::new();
    outbound.trace.insert_into(&mut stored);
    let parent = extract_context(&stored);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let mut outbound = outbound.clone();
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        outbound.trace = TraceHeaders::from_context(&cx);
    }
    (span, outbound)
}

/// Why one relay round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox query failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Publish(#[from] crate::nats::PublishError),
    #[error("outbox row {seq} is corrupt: {reason}")]
    CorruptRow { seq: i64, reason: String },
}

/// Publishes outbox rows. Wake it with [`OutboxRelay::notifier`] after a commit.
pub struct OutboxRelay {
    pool: AnyPool,
    /// The service's writers' queue: the relay's updates and purges wait
    /// their turn with the service's transactions.
    writes: WriteGate,
    publisher: EventPublisher,
    settings: RelaySettings,
    wake: Arc<Notify>,
    stats: Arc<RelayStats>,
}

impl OutboxRelay {
    pub fn new(
        pool: AnyPool,
        writes: WriteGate,
        publisher: EventPublisher,
        settings: RelaySettings,
    ) -> Self {
        Self {
            pool,
            writes,
            publisher,
            settings,
            wake: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Call `notify_one()` on it after committing a transaction that enqueued.
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    async fn pending(&self, limit: usize) -> Result<Vec<PendingRow>, RelayError> {
        let rows = sqlx::query(
            "SELECT seq, event_id, event_type, subject, body, traceparent, tracestate
             FROM shopmesh_outbox WHERE published_at_ms IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(traced(&self.pool))
        .await?;
        rows.into_iter()
            .map(|row| {
                let seq: i64 = row.try_get(0)?;
                let corrupt = |reason: &str| RelayError::CorruptRow {
                    seq,
                    reason: reason.to_owned(),
                };
                let event_id = EventId::parse(&row.try_get::<String, _>(1)?)
                    .map_err(|_| corrupt("event_id"))?;
                let event_type = EventType::parse(&row.try_get::<String, _>(2)?)
                    .ok_or_else(|| corrupt("event_type"))?;
                Ok(PendingRow {
                    seq,
                    outbound: OutboundEvent {
                        event_id,
                        event_type,
                        subject: Subject::from(row.try_get::<String, _>(3)?),
                        body: Bytes::from(row.try_get::<Vec<u8>, _>(4)?),
                        trace: TraceHeaders {
                            traceparent: row.try_get(5)?,
                            tracestate: row.try_get(6)?,
                        },
                    },
                })
            })
            .collect()
    }

    /// Marks rows published, with their stream sequences: one statement per
    /// [`MARK_CHUNK`] rows, each in its own turn at the write queue (one
    /// write per round instead of one per row: a checkout's four
    /// `product.updated` rows were four writes).
    async fn mark_published(&self, published: &[(i64, u64)]) -> Result<(), sqlx::Error> {
        let now = Timestamp::now().as_millis();
        for chunk in published.chunks(MARK_CHUNK) {
            // Placeholders only: the text depends on the row count alone.
            let sql = AssertSqlSafe(mark_published_sql(chunk.len()));
            let mut update = sqlx::query(sql).bind(now);
            for &(seq, stream_sequence) in chunk {
                update = update.bind(seq).bind(stream_sequence as i64);
            }
            self.writes
                .in_turn(update.execute(traced(&self.pool)))
                .await?;
        }
        Ok(())
    }

    /// Publishes up to `limit` pending rows in order; returns how many.
    pub async fn relay_once(&self, limit: usize) -> Result<usize, RelayError> {
        let rows = self.pending(limit).await?;
        let mut sent = Vec::with_capacity(rows.len());
        for row in &rows {
            let (span, outbound) = producer_span(row);
            sent.push((
                row.seq,
                self.publisher.send(outbound).instrument(span).await?,
            ));
        }
        let mut published = Vec::with_capacity(sent.len());
        let mut failure = None;
        for (seq, pending) in sent {
            match pending.confirm().await {
                Ok(stored) => published.push((seq, stored.stream_sequence)),
                Err(error) => {
                    // The rows confirmed before it are marked; it and the
                    // rest stay pending and go again (the duplicate window
                    // drops any the server already has).
                    failure = Some(error);
                    break;
                }
            }
        }
        self.mark_published(&published).await?;
        self.stats
            .relayed
            .fetch_add(published.len() as u64, Ordering::Relaxed);
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(published.len()),
        }
    }

    /// Deletes published rows older than the retention.
    pub async fn purge(&self) -> Result<u64, sqlx::Error> {
        let cutoff = Timestamp::now().as_millis() - self.settings.retention.as_millis() as i64;
        let delete = sqlx::query(
            "DELETE FROM shopmesh_outbox WHERE published_at_ms IS NOT NULL AND published_at_ms < $1",
        )
        .bind(cutoff)
        .execute(traced(&self.pool));
        let result = self.writes.in_turn(delete).await?;
        Ok(result.rows_affected())
    }

    /// Relays until `shutdown`, then keeps relaying for at most the drain
    /// timeout so that what was committed before shutdown goes out.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut degraded = false;
        let mut last_purge = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let limit = if degraded { 1 } else { self.settings.batch };
            // A round blocked on a broker that is down must not hold up
            // shutdown; rows of an abandoned round stay pending.
            let round = tokio::select! {
                _ = shutdown.cancelled() => break,
                round = self.relay_once(limit) => round,
            };
            match round {
                Ok(n) if n > 0 => {
                    degraded = false;
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    degraded = true;
                    self.stats.failed_rounds.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %error, "outbox relay round failed; will retry");
                }
            }
            match backlog(&self.pool).await {
                Ok(rows) => crate::metrics::metrics().outbox_backlog.set(rows),
                Err(error) => tracing::warn!(%error, "cannot count the outbox backlog"),
            }
            if last_purge.elapsed() > Duration::from_secs(60) {
                last_purge = tokio::time::Instant::now();
                if let Err(error) = self.purge().await {
                    tracing::warn!(%error, "outbox purge failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        // Drain: publish what is committed, within the grace period.
        let drain = async {
            while let Ok(n) = self.relay_once(self.settings.batch).await {
                if n == 0 {
                    break;
                }
            }
        };
        if tokio::time::timeout(self.settings.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!("outbox drain timed out; the rest is published at the next start");
        }
    }
}
