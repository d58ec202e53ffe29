//! Domain types of the order service: values that have been validated.

mod order;
mod quantity;

pub use order::{Order, OrderLine, OrderStatus};
pub use quantity::Quantity;
