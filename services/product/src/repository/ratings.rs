//! The `ratings` table and the running totals it feeds in `products`.

use super::category;
use crate::domain::{Rating, Stars};
use shopmesh_shared::db_span::traced;
use shopmesh_shared::events::{ProductId, UserId};
use sqlx::{AnyConnection, Row};

/// Records `user`'s rating of `product` (replacing an earlier one) and
/// updates the product's count and sum. `None` when the product does not
/// exist. Must run in a write transaction.
pub async fn rate(
    conn: &mut AnyConnection,
    product: ProductId,
    user: UserId,
    stars: Stars,
    now_ms: i64,
) -> sqlx::Result<Option<Rating>> {
    let product_text = product.to_string();
    let user_text = user.to_string();
    // Lock the product row first: ratings of one product then apply one after
    // another, so the previous rating read below is the committed one and the
    // totals cannot drift under concurrent ratings.
    let Some(row) = sqlx::query(
        "UPDATE products SET rating_count = rating_count WHERE id = $1 RETURNING category",
    )
    .bind(&product_text)
    .fetch_optional(traced(&mut *conn))
    .await?
    else {
        return Ok(None);
    };
    let category = category(&row.try_get::<String, _>(0)?)?;

    let previous: Option<i64> =
        sqlx::query("SELECT stars FROM ratings WHERE product_id = $1 AND user_id = $2")
            .bind(&product_text)
            .bind(&user_text)
            .fetch_optional(traced(&mut *conn))
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
    let stars_value = i64::from(stars.get());
    let (added, delta) = match previous {
        Some(old) => {
            sqlx::query(
                "UPDATE ratings SET stars = $1, rated_at_ms = $2
                 WHERE product_id = $3 AND user_id = $4",
            )
            .bind(stars_value)
            .bind(now_ms)
            .bind(&product_text)
            .bind(&user_text)
            .execute(traced(&mut *conn))
            .await?;
            (0_i64, stars_value - old)
        }
        None => {
            sqlx::query(
                "INSERT INTO ratings (product_id, user_id, stars, rated_at_ms)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&product_text)
            .bind(&user_text)
            .bind(stars_value)
            .bind(now_ms)
            .execute(traced(&mut *conn))
            .await?;
            (1, stars_value)
        }
    };
    let totals = sqlx::query(
        "UPDATE products
         SET rating_count = rating_count + $1, rating_sum = rating_sum + $2
         WHERE id = $3
         RETURNING rating_count, rating_sum",
    )
    .bind(added)
    .bind(delta)
    .bind(&product_text)
    .fetch_one(traced(&mut *conn))
    .await?;
    Ok(Some(Rating {
        product_id: product,
        category,
        stars: stars.get(),
        rating_count: totals.try_get(0)?,
        rating_sum: totals.try_get(1)?,
    }))
}
