//! An order as stored and as returned by the API.

use serde::Serialize;
use shopmesh_shared::events::{Category, OrderId, ProductId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "placed" => Some(OrderStatus::Placed),
            "cancelled" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub name: String,
    pub category: Category,
    pub quantity: u32,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: OrderId,
    #[serde(skip)]
    pub user_id: UserId,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub lines: Vec<OrderLine>,
    pub created_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at_ms: Option<i64>,
}

impl Order {
    /// The event lines of this order.
    pub fn event_lines(&self) -> Vec<shopmesh_shared::events::OrderLine> {
        self.lines
            .iter()
            .map(|line| shopmesh_shared::events::OrderLine {
                product_id: line.product_id,
                category: line.category.clone(),
                quantity: line.quantity,
                unit_price_cents: line.unit_price_cents,
            })
            .collect()
    }
}
