//! Stock reserved for orders: the `reservations` table and the stock moves
//! in `products` that go with it.

use super::{category, product_id};
use shopmesh_shared::db::values_placeholders;
use shopmesh_shared::db_span::traced;
use shopmesh_shared::events::{Category, OrderId, ProductId};
use shopmesh_shared::rpc::ReservedLine;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

/// What a stock move returns: the product as it is afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    pub name: String,
    pub category: Category,
    pub price_cents: i64,
    pub stock: i64,
}

/// The lines already reserved for `order`, by product id.
pub async fn find(conn: &mut AnyConnection, order: OrderId) -> sqlx::Result<Vec<ReservedLine>> {
    let rows = sqlx::query(
        "SELECT product_id, name, category, quantity, unit_price_cents
         FROM reservations WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(order.to_string())
    .fetch_all(traced(conn))
    .await?;
    rows.iter()
        .map(|row| {
            let quantity: i64 = row.try_get(3)?;
            Ok(ReservedLine {
                product_id: product_id(&row.try_get::<String, _>(0)?)?,
                name: row.try_get(1)?,
                category: category(&row.try_get::<String, _>(2)?)?,
                quantity: u32::try_from(quantity)
                    .map_err(|_| super::corrupt("quantity", &quantity.to_string()))?,
                unit_price_cents: row.try_get(4)?,
            })
        })
        .collect()
}

/// Takes `quantity` units of `product` if that many are in stock. `None`
/// when the product does not exist or has too few: the guard is in the
/// `WHERE`, so concurrent takers can never drive stock below zero.
pub async fn take(
    conn: &mut AnyConnection,
    product: ProductId,
    quantity: i64,
    now_ms: i64,
) -> sqlx::Result<Option<StockMove>> {
    let row = sqlx::query(
        "UPDATE products SET stock = stock - $1, updated_at_ms = $2
         WHERE id = $3 AND stock >= $1
         RETURNING name, category, price_cents, stock",
    )
    .bind(quantity)
    .bind(now_ms)
    .bind(product.to_string())
    .fetch_optional(traced(conn))
    .await?;
    row.as_ref().map(stock_move).transpose()
}

/// Gives `quantity` units of `product` back; `None` when it does not exist.
pub async fn give_back(
    conn: &mut AnyConnection,
    product: ProductId,
    quantity: i64,
    now_ms: i64,
) -> sqlx::Result<Option<StockMove>> {
    let row = sqlx::query(
        "UPDATE products SET stock = stock + $1, updated_at_ms = $2
         WHERE id = $3
         RETURNING name, category, price_cents, stock",
    )
    .bind(quantity)
    .bind(now_ms)
    .bind(product.to_string())
    .fetch_optional(traced(conn))
    .await?;
    row.as_ref().map(stock_move).transpose()
}

fn stock_move(row: &sqlx::any::AnyRow) -> sqlx::Result<StockMove> {
    Ok(StockMove {
        name: row.try_get(0)?,
        category: category(&row.try_get::<String, _>(1)?)?,
        price_cents: row.try_get(2)?,
        stock: row.try_get(3)?,
    })
}

/// The stock of `product` as this transaction sees it; `None` when it does
/// not exist.
pub async fn stock_of(conn: &mut AnyConnection, product: ProductId) -> sqlx::Result<Option<i64>> {
    sqlx::query("SELECT stock FROM products WHERE id = $1")
        .bind(product.to_string())
        .fetch_optional(traced(conn))
        .await?
        .map(|row| row.try_get(0))
        .transpose()
}

/// Records `order`'s reserved lines, in one statement (one round trip while
/// the transaction holds the write lock). An order has at most
/// `inventory::MAX_ITEMS` lines, well under the databases' parameter limits.
pub async fn insert_all(
    conn: &mut AnyConnection,
    order: OrderId,
    lines: &[ReservedLine],
) -> sqlx::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO reservations
            (order_id, product_id, quantity, unit_price_cents, category, name)
         VALUES {}",
        values_placeholders(lines.len(), 6)
    );
    // Placeholders only: the text depends on the line count alone.
    let mut insert = sqlx::query(AssertSqlSafe(sql));
    for line in lines {
        insert = insert
            .bind(order.to_string())
            .bind(line.product_id.to_string())
            .bind(i64::from(line.quantity))
            .bind(line.unit_price_cents)
            .bind(line.category.as_str())
            .bind(line.name.as_str());
    }
    insert.execute(traced(conn)).await?;
    Ok(())
}

/// Claims `order` for a reservation: its row in `reserved_orders`, written
/// before anything else so that a concurrent release of the same order waits
/// for this transaction (or this one for the release). False when the order
/// was released already: it must take no stock.
pub async fn claim(conn: &mut AnyConnection, order: OrderId) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO reserved_orders (order_id) VALUES ($1) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order.to_string())
    .execute(traced(&mut *conn))
    .await?;
    let released: Option<i64> =
        sqlx::query("SELECT released_at_ms FROM reserved_orders WHERE order_id = $1")
            .bind(order.to_string())
            .fetch_one(traced(&mut *conn))
            .await?
            .try_get(0)?;
    Ok(released.is_none())
}

/// Marks `order` released (also when nothing was reserved for it yet: a
/// reservation arriving later is refused). Written before the reservations
/// are read, for the same reason as [`claim`].
pub async fn mark_released(
    conn: &mut AnyConnection,
    order: OrderId,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reserved_orders (order_id, released_at_ms) VALUES ($1, $2)
         ON CONFLICT (order_id) DO UPDATE SET released_at_ms = $2",
    )
    .bind(order.to_string())
    .bind(now_ms)
    .execute(traced(conn))
    .await?;
    Ok(())
}

/// Deletes `order`'s reservations and returns what they held, by product id.
/// Deleting first is what makes a release happen once: a concurrent release
/// of the same order waits on these rows and then finds none.
pub async fn remove(
    conn: &mut AnyConnection,
    order: OrderId,
) -> sqlx::Result<Vec<(ProductId, i64)>> {
    let rows =
        sqlx::query("DELETE FROM reservations WHERE order_id = $1 RETURNING product_id, quantity")
            .bind(order.to_string())
            .fetch_all(traced(conn))
            .await?;
    let mut lines = rows
        .iter()
        .map(|row| Ok((product_id(&row.try_get::<String, _>(0)?)?, row.try_get(1)?)))
        .collect::<sqlx::Result<Vec<_>>>()?;
    // One lock order for every transaction that touches several products.
    lines.sort_by_key(|(id, _)| *id);
    Ok(lines)
}
