//! SQL of the order service. Every statement runs unchanged on SQLite and
//! Postgres through `sqlx::AnyPool` (ids as TEXT, times as BIGINT ms).

pub mod cart;
pub mod orders;
pub mod releases;

use shopmesh_shared::events::{Category, ProductId};

/// Text columns written by this service come back valid; a value that does
/// not parse means the database was changed by hand.
pub(crate) fn product_id(text: &str) -> anyhow::Result<ProductId> {
    ProductId::parse(text).map_err(|e| anyhow::anyhow!("stored product id: {e}"))
}

pub(crate) fn category(text: &str) -> anyhow::Result<Category> {
    Category::parse(text).map_err(|e| anyhow::anyhow!("stored category: {e}"))
}
