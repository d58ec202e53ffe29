//! Validated values of the catalogue. Every constructor is a `parse` that
//! says why a value is refused; routes attach the field name, so raw request
//! values never reach storage.

mod listing;
mod price;
mod product;
mod product_name;
mod stars;
mod stock;

pub use listing::{ListQuery, Page, PerPage, SearchText};
pub use price::PriceCents;
pub use product::{NewProduct, Product, ProductChange, Rating};
pub use product_name::ProductName;
pub use stars::Stars;
pub use stock::Stock;

/// Why a value was refused; the caller knows which field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
