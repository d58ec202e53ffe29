//! Orders and their lines.

use super::{category, product_id};
use crate::domain::{Order, OrderLine, OrderStatus};
use shopmesh_shared::db_span::traced;
use shopmesh_shared::events::{OrderId, UserId};
use sqlx::{AnyConnection, AnyPool, Row};

/// Writes a new order with its lines (inside the checkout transaction).
pub async fn insert(conn: &mut AnyConnection, order: &Order) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, total_cents, created_at_ms)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order.id.to_string())
    .bind(order.user_id.to_string())
    .bind(order.status.as_str())
    .bind(order.total_cents)
    .bind(order.created_at_ms)
    .execute(traced(&mut *conn))
    .await?;
    for line in &order.lines {
        sqlx::query(
            "INSERT INTO order_lines
                (order_id, product_id, name, category, quantity, unit_price_cents)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(order.id.to_string())
        .bind(line.product_id.to_string())
        .bind(line.name.clone())
        .bind(line.category.as_str().to_owned())
        .bind(i64::from(line.quantity))
        .bind(line.unit_price_cents)
        .execute(traced(&mut *conn))
        .await?;
    }
    Ok(())
}

/// Orders joined with their lines, followed by `$tail` (filter and order).
macro_rules! select_orders {
    ($tail:literal) => {
        concat!(
            "SELECT o.id, o.status, o.total_cents, o.created_at_ms, o.cancelled_at_ms,
                l.product_id, l.name, l.category, l.quantity, l.unit_price_cents
             FROM orders o JOIN order_lines l ON l.order_id = o.id ",
            $tail
        )
    };
}

/// Folds joined rows (ordered by order) into orders.
fn fold(user: UserId, rows: &[sqlx::any::AnyRow]) -> anyhow::Result<Vec<Order>> {
    let mut orders: Vec<Order> = Vec::new();
    for row in rows {
        let id = OrderId::parse(&row.try_get::<String, _>(0)?)
            .map_err(|e| anyhow::anyhow!("stored order id: {e}"))?;
        if orders.last().is_none_or(|o| o.id != id) {
            let status: String = row.try_get(1)?;
            orders.push(Order {
                id,
                user_id: user,
                status: OrderStatus::parse(&status)
                    .ok_or_else(|| anyhow::anyhow!("stored order status {status:?}"))?,
                total_cents: row.try_get(2)?,
                created_at_ms: row.try_get(3)?,
                cancelled_at_ms: row.try_get(4)?,
                lines: Vec::new(),
            });
        }
        let order = orders.last_mut().expect("pushed above");
        order.lines.push(OrderLine {
            product_id: product_id(&row.try_get::<String, _>(5)?)?,
            name: row.try_get(6)?,
            category: category(&row.try_get::<String, _>(7)?)?,
            quantity: row.try_get::<i64, _>(8)? as u32,
            unit_price_cents: row.try_get(9)?,
        });
    }
    Ok(orders)
}

/// The user's order `id`; `None` when it does not exist or is someone else's.
pub async fn find(pool: &AnyPool, user: UserId, id: OrderId) -> anyhow::Result<Option<Order>> {
    let rows = sqlx::query(select_orders!(
        "WHERE o.id = $1 AND o.user_id = $2 ORDER BY l.product_id"
    ))
    .bind(id.to_string())
    .bind(user.to_string())
    .fetch_all(traced(pool))
    .await?;
    Ok(fold(user, &rows)?.pop())
}

/// The user's orders, newest first.
pub async fn list(pool: &AnyPool, user: UserId) -> anyhow::Result<Vec<Order>> {
    let rows = sqlx::query(select_orders!(
        "WHERE o.user_id = $1 ORDER BY o.created_at_ms DESC, o.id DESC, l.product_id"
    ))
    .bind(user.to_string())
    .fetch_all(traced(pool))
    .await?;
    fold(user, &rows)
}

/// Whether order `id` was recorded (whoever it belongs to).
pub async fn exists(pool: &AnyPool, id: OrderId) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) FROM orders WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(traced(pool))
        .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}

/// Marks a placed order cancelled; false when it was not in `placed`.
pub async fn mark_cancelled(
    conn: &mut AnyConnection,
    id: OrderId,
    at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE orders SET status = 'cancelled', cancelled_at_ms = $1
         WHERE id = $2 AND status = 'placed'",
    )
    .bind(at_ms)
    .bind(id.to_string())
    .execute(traced(conn))
    .await?;
    Ok(result.rows_affected() == 1)
}
