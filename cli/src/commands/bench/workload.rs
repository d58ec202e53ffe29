//! The synthetic events a bench publishes: a shop's mix (mostly views, some
//! cart adds, few orders) by a fixed pool of users over the products the
//! product service really holds, so that analytics knows every product from
//! its `product.created` and the co-occurrences feed real recommendations.

use crate::commands::load::tastes::Catalogue;
use shopmesh_product::seed::SplitMix64;
use shopmesh_shared::events::{
    CartItemAdded, Category, Event, EventMeta, OrderId, OrderLine, OrderPlaced, ProductId,
    ProductViewed, UserId,
};

/// The producer name the bench's events carry.
const PRODUCER: &str = "bench";

/// One catalogue product as events name it.
#[derive(Debug, Clone)]
pub struct Product {
    pub id: ProductId,
    pub category: Category,
}

pub struct Workload {
    rng: SplitMix64,
    pub users: Vec<UserId>,
    pub products: Vec<Product>,
}

impl Workload {
    pub fn new(catalogue: &Catalogue, users: usize, seed: u64) -> anyhow::Result<Self> {
        let products = catalogue
            .products
            .iter()
            .map(|p| {
                Ok(Product {
                    id: ProductId::parse(&p.id)?,
                    category: Category::parse(&catalogue.categories[p.category])?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!products.is_empty(), "the catalogue is empty");
        Ok(Self {
            rng: SplitMix64::new(seed),
            users: (0..users.max(1)).map(|_| UserId::new_v7()).collect(),
            products,
        })
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    /// A product, skewed towards the first ones of the catalogue (a few
    /// popular products, a long tail), so that users meet on products.
    fn product(&mut self) -> Product {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let index = ((u * u) * self.products.len() as f64) as usize;
        self.products[index.min(self.products.len() - 1)].clone()
    }

    /// The next event: 80% views, 15% cart adds, 5% one-line orders.
    pub fn event(&mut self) -> Event {
        let index = self.below(self.users.len());
        let user = self.users[index];
        let Product { id, category } = self.product();
        let meta = EventMeta::new(PRODUCER, Some(user));
        match self.below(20) {
            0..=15 => Event::new(
                meta,
                ProductViewed {
                    product_id: id,
                    category,
                },
            ),
            16..=18 => Event::new(
                meta,
                CartItemAdded {
                    product_id: id,
                    category,
                    quantity: 1,
                    unit_price_cents: 100,
                },
            ),
            _ => Event::new(
                meta,
                OrderPlaced {
                    order_id: OrderId::new_v7(),
                    lines: vec![OrderLine {
                        product_id: id,
                        category,
                        quantity: 1,
                        unit_price_cents: 100,
                    }],
                    total_cents: 100,
                },
            ),
        }
    }

    pub fn events(&mut self, n: usize) -> Vec<Event> {
        (0..n).map(|_| self.event()).collect()
    }
}

/// A view of `product` by `user`: what a latency probe publishes.
pub fn view(user: UserId, product: &Product) -> Event {
    Event::new(
        EventMeta::new(PRODUCER, Some(user)),
        ProductViewed {
            product_id: product.id,
            category: product.category.clone(),
        },
    )
}
