//! The services' tables read back directly (SQLite files or Postgres), for
//! what no API shows: every committed order, every outbox row, every
//! reservation.

use sqlx::{AnyPool, Row};
use std::collections::{HashMap, HashSet};

/// A small pool on `url`.
pub async fn open(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
}

/// The first column of every row of `sql`, as text.
pub async fn texts(pool: &AnyPool, sql: &'static str) -> Vec<String> {
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

/// A single number.
pub async fn number(pool: &AnyPool, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<i64, _>(0)
}

/// Outbox rows not yet published.
pub async fn outbox_backlog(pool: &AnyPool) -> i64 {
    number(
        pool,
        "SELECT COUNT(*) FROM shopmesh_outbox WHERE published_at_ms IS NULL",
    )
    .await
}

/// What the order and product databases say about orders and stock.
pub struct Ledger {
    /// Every recorded order.
    pub orders: HashSet<String>,
    /// Placed (not cancelled) orders.
    pub placed: HashSet<String>,
    /// Orders with at least one line.
    pub with_lines: HashSet<String>,
    /// `order.placed` rows in the order service's outbox.
    pub placed_in_outbox: i64,
    /// Units ordered per product over placed orders.
    pub ordered: HashMap<String, i64>,
    /// Orders holding a reservation in the product service.
    pub reserved_orders: HashSet<String>,
    /// Units reserved per product.
    pub reserved: HashMap<String, i64>,
    /// Stock per product.
    pub stock: HashMap<String, i64>,
}

impl Ledger {
    pub async fn read(orders: &AnyPool, products: &AnyPool) -> Self {
        let pairs = async |pool: &AnyPool, sql: &'static str| -> HashMap<String, i64> {
            let mut out = HashMap::new();
            for row in sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            {
                *out.entry(row.get::<String, _>(0)).or_default() += row.get::<i64, _>(1);
            }
            out
        };
        Self {
            orders: texts(orders, "SELECT id FROM orders")
                .await
                .into_iter()
                .collect(),
            placed: texts(orders, "SELECT id FROM orders WHERE status = 'placed'")
                .await
                .into_iter()
                .collect(),
            with_lines: texts(orders, "SELECT DISTINCT order_id FROM order_lines")
                .await
                .into_iter()
                .collect(),
            placed_in_outbox: number(
                orders,
                "SELECT COUNT(*) FROM shopmesh_outbox WHERE event_type = 'order.placed'",
            )
            .await,
            ordered: pairs(
                orders,
                "SELECT l.product_id, l.quantity FROM order_lines l
                 JOIN orders o ON o.id = l.order_id WHERE o.status = 'placed'",
            )
            .await,
            reserved_orders: texts(products, "SELECT DISTINCT order_id FROM reservations")
                .await
                .into_iter()
                .collect(),
            reserved: pairs(products, "SELECT product_id, quantity FROM reservations").await,
            stock: pairs(products, "SELECT id, stock FROM products").await,
        }
    }

    /// Orders, their outbox rows and the reservations agree: every order has
    /// its lines and its `order.placed` row, every placed order holds its
    /// reservation and no reservation is left without a placed order, and
    /// per product the units reserved are the units ordered.
    pub fn consistent(&self) -> bool {
        self.placed == self.reserved_orders
            && self.orders.is_subset(&self.with_lines)
            && self.placed_in_outbox == self.orders.len() as i64
            && self.ordered == self.reserved
    }
}
