//! Reservations waiting to be given back (see the `releaser` module).

use shopmesh_shared::db_span::traced;
use shopmesh_shared::events::OrderId;
use sqlx::{AnyPool, Row};

/// Records that `order`'s reservation must be released. Recording it again
/// changes nothing.
pub async fn record(pool: &AnyPool, order: OrderId, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pending_releases (order_id, since_ms) VALUES ($1, $2)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order.to_string())
    .bind(now_ms)
    .execute(traced(pool))
    .await?;
    Ok(())
}

/// Up to `limit` orders whose reservation waits, oldest first.
pub async fn pending(pool: &AnyPool, limit: i64) -> anyhow::Result<Vec<OrderId>> {
    let rows =
        sqlx::query("SELECT order_id FROM pending_releases ORDER BY since_ms, order_id LIMIT $1")
            .bind(limit)
            .fetch_all(traced(pool))
            .await?;
    rows.iter()
        .map(|row| {
            OrderId::parse(&row.try_get::<String, _>(0)?)
                .map_err(|e| anyhow::anyhow!("stored order id: {e}"))
        })
        .collect()
}

/// The product service confirmed `order`'s release.
pub async fn forget(pool: &AnyPool, order: OrderId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM pending_releases WHERE order_id = $1")
        .bind(order.to_string())
        .execute(traced(pool))
        .await?;
    Ok(())
}

/// How many releases wait.
pub async fn count(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) FROM pending_releases")
        .fetch_one(traced(pool))
        .await?
        .try_get(0)
}
