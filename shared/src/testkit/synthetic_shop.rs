//! Synthetic shop behaviour for the tests that publish events themselves: a
//! catalogue, then a deterministic mix of views, cart changes, orders (some
//! of two lines), ratings and logins over fixed users and products. The
//! analytics tests and the cross-service fault tests share it, so both
//! exercise every aggregate the same way.

use crate::events::{
    CartItemAdded, CartItemRemoved, Category, Event, EventMeta, OrderId, OrderLine, OrderPlaced,
    ProductCreated, ProductId, ProductRated, ProductViewed, UserId, UserLoggedIn,
};

/// A small deterministic generator (LCG): no randomness crate needed.
pub struct SyntheticShop {
    seed: u64,
    pub users: Vec<UserId>,
    pub products: Vec<(ProductId, Category)>,
}

impl SyntheticShop {
    pub fn new(seed: u64, users: usize, products: usize) -> Self {
        let categories = ["books", "garden", "toys", "music"];
        Self {
            seed,
            users: (0..users).map(|_| UserId::new_v7()).collect(),
            products: (0..products)
                .map(|i| {
                    (
                        ProductId::new_v7(),
                        Category::parse(categories[i % categories.len()]).unwrap(),
                    )
                })
                .collect(),
        }
    }

    fn next(&mut self, below: usize) -> usize {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.seed >> 33) % below as u64) as usize
    }

    /// `product.created` for every product (partition 0, no user).
    pub fn catalogue(&self) -> Vec<Event> {
        self.products
            .iter()
            .map(|(id, category)| {
                Event::new(
                    EventMeta::new("product", None),
                    ProductCreated {
                        product_id: *id,
                        name: "thing".into(),
                        category: category.clone(),
                        price_cents: 999,
                        stock: 100,
                    },
                )
            })
            .collect()
    }

    pub fn event(&mut self) -> Event {
        let i = self.next(self.users.len());
        let user = self.users[i];
        let i = self.next(self.products.len());
        let (product_id, category) = self.products[i].clone();
        let meta = |producer: &str| EventMeta::new(producer, Some(user));
        match self.next(20) {
            0..=10 => Event::new(
                meta("product"),
                ProductViewed {
                    product_id,
                    category,
                },
            ),
            11..=14 => Event::new(
                meta("order"),
                CartItemAdded {
                    product_id,
                    category,
                    quantity: 1 + self.next(3) as u32,
                    unit_price_cents: 999,
                },
            ),
            15 => Event::new(
                meta("order"),
                CartItemRemoved {
                    product_id,
                    category,
                },
            ),
            16 | 17 => {
                let i = self.next(self.products.len());
                let (second, second_category) = self.products[i].clone();
                Event::new(
                    meta("order"),
                    OrderPlaced {
                        order_id: OrderId::new_v7(),
                        lines: vec![
                            OrderLine {
                                product_id,
                                category,
                                quantity: 1,
                                unit_price_cents: 999,
                            },
                            OrderLine {
                                product_id: second,
                                category: second_category,
                                quantity: 2,
                                unit_price_cents: 500,
                            },
                        ],
                        total_cents: 1999,
                    },
                )
            }
            18 => Event::new(
                meta("product"),
                ProductRated {
                    product_id,
                    category,
                    stars: 1 + self.next(5) as u8,
                },
            ),
            _ => Event::new(
                meta("user"),
                UserLoggedIn {
                    session_expires_at_ms: 0,
                },
            ),
        }
    }
}
