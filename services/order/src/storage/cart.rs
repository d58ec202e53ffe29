//! Cart lines: one row per (user, product).

use super::{category, product_id};
use crate::domain::Quantity;
use serde::Serialize;
use shopmesh_shared::db_span::traced;
use shopmesh_shared::events::{Category, ProductId, Timestamp, UserId};
use shopmesh_shared::rpc::ProductInfo;
use sqlx::{AnyConnection, AnyPool, Row};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartLine {
    pub product_id: ProductId,
    pub name: String,
    pub category: Category,
    pub quantity: u32,
    /// The price when the line was last added to; checkout charges the
    /// price in force when stock is reserved.
    pub unit_price_cents: i64,
}

/// Adds `quantity` of `product`, on top of what the cart holds. Returns the
/// line's new quantity, or `None` when it would exceed [`Quantity::MAX`]
/// (nothing is written then).
pub async fn add(
    pool: &AnyPool,
    user: UserId,
    product: &ProductInfo,
    quantity: Quantity,
) -> Result<Option<u32>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO cart_items
            (user_id, product_id, name, category, quantity, unit_price_cents, added_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (user_id, product_id) DO UPDATE SET
            quantity = cart_items.quantity + excluded.quantity,
            name = excluded.name,
            unit_price_cents = excluded.unit_price_cents,
            added_at_ms = excluded.added_at_ms
         WHERE cart_items.quantity + excluded.quantity <= $8
         RETURNING quantity",
    )
    .bind(user.to_string())
    .bind(product.product_id.to_string())
    .bind(product.name.clone())
    .bind(product.category.as_str().to_owned())
    .bind(i64::from(quantity.get()))
    .bind(product.price_cents)
    .bind(Timestamp::now().as_millis())
    .bind(i64::from(Quantity::MAX))
    .fetch_optional(traced(pool))
    .await?;
    row.map(|row| row.try_get::<i64, _>(0).map(|q| q as u32))
        .transpose()
}

/// Removes a product from the cart; its category when it was there.
pub async fn remove(
    pool: &AnyPool,
    user: UserId,
    product: ProductId,
) -> Result<Option<Category>, anyhow::Error> {
    let row = sqlx::query(
        "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2 RETURNING category",
    )
    .bind(user.to_string())
    .bind(product.to_string())
    .fetch_optional(traced(pool))
    .await?;
    row.map(|row| category(&row.try_get::<String, _>(0)?))
        .transpose()
}

/// The user's cart, by product name.
pub async fn lines(conn: &mut AnyConnection, user: UserId) -> Result<Vec<CartLine>, anyhow::Error> {
    let rows = sqlx::query(
        "SELECT product_id, name, category, quantity, unit_price_cents
         FROM cart_items WHERE user_id = $1 ORDER BY name, product_id",
    )
    .bind(user.to_string())
    .fetch_all(traced(conn))
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CartLine {
                product_id: product_id(&row.try_get::<String, _>(0)?)?,
                name: row.try_get(1)?,
                category: category(&row.try_get::<String, _>(2)?)?,
                quantity: row.try_get::<i64, _>(3)? as u32,
                unit_price_cents: row.try_get(4)?,
            })
        })
        .collect()
}

/// Empties the cart (inside the checkout transaction).
pub async fn clear(conn: &mut AnyConnection, user: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cart_items WHERE user_id = $1")
        .bind(user.to_string())
        .execute(traced(conn))
        .await?;
    Ok(())
}
