//! Events for the tests that publish themselves: a catalogue, then a
//! deterministic mix of views, cart changes, orders, ratings and logins over
//! a fixed set of users and products (an LCG: no randomness crate needed).

use shopmesh_shared::events::*;

pub struct Generator {
    seed: u64,
    pub users: Vec<UserId>,
    pub products: Vec<(ProductId, Category)>,
}

impl Generator {
    pub fn new(seed: u64, users: usize, products: usize) -> Self {
        let categories = ["books", "garden", "toys", "music"];
        Self {
            seed,
            users: (0..users).map(|_| UserId::new_v7()).collect(),
            products: (0..products)
                .map(|i| {
                    let category = categories[i % categories.len()];
                    (ProductId::new_v7(), Category::parse(category).unwrap())
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

    /// `product.created` for every product.
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
        let user = self.next(self.users.len());
        let user = self.users[user];
        let product = self.next(self.products.len());
        let (product_id, category) = self.products[product].clone();
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
            16 | 17 => Event::new(
                meta("order"),
                OrderPlaced {
                    order_id: OrderId::new_v7(),
                    lines: vec![OrderLine {
                        product_id,
                        category,
                        quantity: 1,
                        unit_price_cents: 999,
                    }],
                    total_cents: 999,
                },
            ),
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
