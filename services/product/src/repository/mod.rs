//! SQL, and nothing else: every statement the service runs, written once for
//! SQLite and Postgres alike (`$N` placeholders, TEXT ids, BIGINT cents and
//! milliseconds) through `sqlx::AnyPool`. Callers own the transactions
//! (begun in turn at the service's `WriteGate`), so an outbox event can join
//! the change it announces.

pub mod products;
pub mod ratings;
pub mod reservations;

use shopmesh_shared::events::{Category, ProductId};

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
