//! SQL, and nothing else: every statement the service runs, written once for
//! SQLite and Postgres alike (`$N` placeholders, TEXT ids, BIGINT cents and
//! milliseconds) through `sqlx::AnyPool`. Callers own the transactions, so an
//! outbox event can join the change it announces.

pub mod products;
pub mod ratings;
pub mod reservations;

use shopmesh_shared::db::DatabaseKind;
use shopmesh_shared::events::{Category, ProductId};
use sqlx::{Any, AnyPool, Transaction};

/// Starts a transaction that will write. On SQLite it takes the write lock at
/// once (`BEGIN IMMEDIATE`): a deferred transaction that read first cannot
/// upgrade to a writer while another commits, and fails with "database is
/// locked" instead of waiting its turn. Postgres locks rows as it goes.
pub async fn begin_write(
    pool: &AnyPool,
    kind: DatabaseKind,
) -> sqlx::Result<Transaction<'static, Any>> {
    match kind {
        DatabaseKind::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        DatabaseKind::Postgres => pool.begin().await,
    }
}

/// Stored text that should be an id or a category but is not: the database
/// was written by something else than this service.
fn corrupt(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {what} {value:?} is not valid").into())
}

fn product_id(text: &str) -> sqlx::Result<ProductId> {
    ProductId::parse(text).map_err(|_| corrupt("product id", text))
}

fn category(text: &str) -> sqlx::Result<Category> {
    Category::parse(text).map_err(|_| corrupt("category", text))
}
