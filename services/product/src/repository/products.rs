//! The `products` table: create, change, read one or several, list a page.

use super::{category, product_id};
use crate::domain::{ListQuery, NewProduct, Product, ProductChange};
use shopmesh_shared::db_span::traced;
use shopmesh_shared::events::ProductId;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Row};

const COLUMNS: &str = "id, name, category, price_cents, stock, rating_count, rating_sum";

fn from_row(row: &AnyRow) -> sqlx::Result<Product> {
    Ok(Product {
        id: product_id(&row.try_get::<String, _>(0)?)?,
        name: row.try_get(1)?,
        category: category(&row.try_get::<String, _>(2)?)?,
        price_cents: row.try_get(3)?,
        stock: row.try_get(4)?,
        rating_count: row.try_get(5)?,
        rating_sum: row.try_get(6)?,
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    id: ProductId,
    new: &NewProduct,
    now_ms: i64,
) -> sqlx::Result<Product> {
    let row = sqlx::query(
        "INSERT INTO products
            (id, name, category, price_cents, stock, rating_count, rating_sum,
             created_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6)
         RETURNING id, name, category, price_cents, stock, rating_count, rating_sum",
    )
    .bind(id.to_string())
    .bind(new.name.as_str())
    .bind(new.category.as_str())
    .bind(new.price_cents.get())
    .bind(new.stock.get())
    .bind(now_ms)
    .fetch_one(traced(conn))
    .await?;
    from_row(&row)
}

/// The product after the change, or `None` when it does not exist.
pub async fn update(
    conn: &mut AnyConnection,
    id: ProductId,
    change: ProductChange,
    now_ms: i64,
) -> sqlx::Result<Option<Product>> {
    let row = sqlx::query(
        "UPDATE products
         SET price_cents = COALESCE($1, price_cents),
             stock = COALESCE($2, stock),
             updated_at_ms = $3
         WHERE id = $4
         RETURNING id, name, category, price_cents, stock, rating_count, rating_sum",
    )
    .bind(change.price_cents().map(|p| p.get()))
    .bind(change.stock().map(|s| s.get()))
    .bind(now_ms)
    .bind(id.to_string())
    .fetch_optional(traced(conn))
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// One product by primary key: the hot path of `GET /products/{id}`.
pub async fn get(pool: &AnyPool, id: ProductId) -> sqlx::Result<Option<Product>> {
    let row = sqlx::query(
        "SELECT id, name, category, price_cents, stock, rating_count, rating_sum
         FROM products WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(traced(pool))
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The products among `ids` that exist, in no particular order: the read
/// behind the lookup RPC.
pub async fn get_many(pool: &AnyPool, ids: &[ProductId]) -> sqlx::Result<Vec<Product>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    // Only placeholders are concatenated; every id is a bound parameter.
    let sql = format!(
        "SELECT {COLUMNS} FROM products WHERE id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.to_string());
    }
    let rows = query.fetch_all(traced(pool)).await?;
    rows.iter().map(from_row).collect()
}

/// One page of the products matching `query`, ordered by name then id (ids
/// are unique, so pages never overlap or skip), and how many match in all.
pub async fn list(pool: &AnyPool, query: &ListQuery) -> sqlx::Result<(Vec<Product>, i64)> {
    // Only fixed fragments are concatenated; every value is a bound parameter.
    let mut filter = String::new();
    let mut next = 1;
    let mut conditions = Vec::new();
    if query.category.is_some() {
        conditions.push(format!("category = ${next}"));
        next += 1;
    }
    if query.q.is_some() {
        conditions.push(format!("LOWER(name) LIKE ${next} ESCAPE '\\'"));
        next += 1;
    }
    if !conditions.is_empty() {
        filter = format!(" WHERE {}", conditions.join(" AND "));
    }
    let count_sql = format!("SELECT COUNT(*) FROM products{filter}");
    let page_sql = format!(
        "SELECT {COLUMNS} FROM products{filter} ORDER BY name, id LIMIT ${next} OFFSET ${}",
        next + 1
    );
    let category = query.category.as_ref().map(|c| c.as_str().to_owned());
    let pattern = query.q.as_ref().map(|q| q.like_pattern());

    let mut count = sqlx::query(AssertSqlSafe(count_sql));
    let mut page = sqlx::query(AssertSqlSafe(page_sql));
    for value in [category, pattern].into_iter().flatten() {
        count = count.bind(value.clone());
        page = page.bind(value);
    }
    let total: i64 = count.fetch_one(traced(pool)).await?.try_get(0)?;
    let rows = page
        .bind(i64::from(query.per_page.get()))
        .bind(query.offset())
        .fetch_all(traced(pool))
        .await?;
    let items = rows.iter().map(from_row).collect::<sqlx::Result<_>>()?;
    Ok((items, total))
}
