//! The catalogue's records: what is stored, what a create or update asks for.

use super::{PriceCents, ProductName, Stock};
use shopmesh_shared::events::{Category, ProductId};

/// A product as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub category: Category,
    pub price_cents: i64,
    pub stock: i64,
    pub rating_count: i64,
    pub rating_sum: i64,
}

impl Product {
    /// The average of the ratings; 0.0 while there are none (so the field is
    /// always a number: `rating_count` says whether it means anything).
    pub fn rating_mean(&self) -> f64 {
        mean(self.rating_sum, self.rating_count)
    }
}

pub(crate) fn mean(sum: i64, count: i64) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum as f64 / count as f64
    }
}

/// What creating a product needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    pub name: ProductName,
    pub category: Category,
    pub price_cents: PriceCents,
    pub stock: Stock,
}

/// An admin's change of price, stock or both (never neither).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProductChange {
    price_cents: Option<PriceCents>,
    stock: Option<Stock>,
}

impl ProductChange {
    /// `None` when nothing would change.
    pub fn new(price_cents: Option<PriceCents>, stock: Option<Stock>) -> Option<Self> {
        (price_cents.is_some() || stock.is_some()).then_some(Self { price_cents, stock })
    }

    pub fn price_cents(&self) -> Option<PriceCents> {
        self.price_cents
    }

    pub fn stock(&self) -> Option<Stock> {
        self.stock
    }
}

/// A product's ratings after one was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    pub product_id: ProductId,
    pub category: Category,
    pub stars: u8,
    pub rating_count: i64,
    pub rating_sum: i64,
}

impl Rating {
    pub fn rating_mean(&self) -> f64 {
        mean(self.rating_sum, self.rating_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_needs_something_to_change() {
        assert!(ProductChange::new(None, None).is_none());
        assert!(ProductChange::new(None, Some(Stock::parse(1).unwrap())).is_some());
    }

    #[test]
    fn mean_of_nothing_is_zero() {
        assert_eq!(mean(0, 0), 0.0);
        assert_eq!(mean(9, 2), 4.5);
    }
}
