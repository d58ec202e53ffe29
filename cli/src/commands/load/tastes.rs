//! The catalogue as the shoppers know it, and each shopper's tastes: one or
//! two favourite categories (latent factors the recommender should find),
//! within which a few products are much more popular than the rest. Shoppers
//! browse, rate and buy mostly there, so the behaviour events carry a signal.

use anyhow::{Context, bail};
use serde::Deserialize;
use shopmesh_product::seed::SplitMix64;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// One product of the catalogue.
pub struct Product {
    pub id: String,
    pub category: usize,
    /// Words of its name, for searches.
    pub words: Vec<String>,
    /// The stock the shoppers last saw, so that they stop putting sold-out
    /// products in their carts (as people do); shared by every shopper.
    pub stock: AtomicI64,
}

pub struct Catalogue {
    pub products: Vec<Product>,
    pub categories: Vec<String>,
    /// Product indices per category, in listing order.
    pub by_category: Vec<Vec<usize>>,
    /// Product index by id.
    pub index: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    name: String,
    category: String,
    stock: i64,
}

impl Catalogue {
    /// Every product of the product service at `base`, page by page.
    pub async fn fetch(http: &reqwest::Client, base: &str) -> anyhow::Result<Self> {
        const PER_PAGE: usize = 100;
        let mut items = Vec::new();
        for page in 1.. {
            let url = format!("{base}/products?page={page}&per_page={PER_PAGE}");
            let response = http
                .get(&url)
                .send()
                .await
                .with_context(|| format!("cannot reach the product service: GET {url}"))?;
            let status = response.status();
            if !status.is_success() {
                bail!("GET {url} answered {status}");
            }
            let body: Page = response
                .json()
                .await
                .with_context(|| format!("GET {url}: not a product page"))?;
            let last = body.items.len() < PER_PAGE;
            items.extend(body.items);
            if last {
                break;
            }
        }
        if items.is_empty() {
            bail!("the catalogue at {base} is empty: fill it first with `shopmesh seed`");
        }
        Ok(Self::from_items(items))
    }

    fn from_items(items: Vec<Item>) -> Self {
        let mut category_index = BTreeMap::new();
        for item in &items {
            let next = category_index.len();
            category_index.entry(item.category.clone()).or_insert(next);
        }
        let mut categories = vec![String::new(); category_index.len()];
        for (name, &index) in &category_index {
            categories[index] = name.clone();
        }
        let mut by_category = vec![Vec::new(); categories.len()];
        let products = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let category = category_index[&item.category];
                by_category[category].push(index);
                Product {
                    id: item.id,
                    category,
                    words: item
                        .name
                        .split_whitespace()
                        .filter(|w| w.chars().count() >= 4)
                        .map(str::to_lowercase)
                        .collect(),
                    stock: AtomicI64::new(item.stock),
                }
            })
            .collect::<Vec<Product>>();
        let index = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        Self {
            products,
            index,
            categories,
            by_category,
        }
    }

    pub fn in_stock(&self, product: usize) -> bool {
        self.products[product].stock.load(Relaxed) > 0
    }
}

/// What one shopper likes.
pub struct Tastes {
    /// One or two categories; the first is the stronger.
    pub favourites: Vec<usize>,
}

/// How often a shopper strays outside their favourite categories.
const EXPLORE: f64 = 0.1;

/// Uniform in [0, 1).
pub fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl Tastes {
    pub fn draw(rng: &mut SplitMix64, catalogue: &Catalogue) -> Self {
        let n = catalogue.categories.len() as u64;
        let first = rng.below(n) as usize;
        let mut favourites = vec![first];
        if n > 1 && rng.below(2) == 0 {
            let mut second = rng.below(n - 1) as usize;
            if second >= first {
                second += 1;
            }
            favourites.push(second);
        }
        Self { favourites }
    }

    pub fn likes(&self, category: usize) -> bool {
        self.favourites.contains(&category)
    }

    /// A category to browse: mostly a favourite (the first twice as often as
    /// the second), now and then any.
    pub fn category(&self, rng: &mut SplitMix64, catalogue: &Catalogue) -> usize {
        if unit(rng) < EXPLORE {
            return rng.below(catalogue.categories.len() as u64) as usize;
        }
        match self.favourites.as_slice() {
            [only] => *only,
            [first, second, ..] => {
                if rng.below(3) < 2 {
                    *first
                } else {
                    *second
                }
            }
            [] => 0,
        }
    }

    /// A product of a category the shopper would look at; within a category
    /// the first listed products are the popular ones (a skewed pick, so that
    /// shoppers with the same tastes meet on the same products).
    pub fn product(&self, rng: &mut SplitMix64, catalogue: &Catalogue) -> usize {
        let products = &catalogue.by_category[self.category(rng, catalogue)];
        let u = unit(rng);
        products[((u * u * u) * products.len() as f64) as usize]
    }

    /// Stars a shopper gives: favourites are liked, the rest less so.
    pub fn stars(&self, rng: &mut SplitMix64, category: usize) -> i64 {
        if self.likes(category) {
            4 + rng.below(2) as i64
        } else {
            1 + rng.below(3) as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let items = (0..40)
            .map(|i| Item {
                id: format!("p{i}"),
                name: format!("Product number {i}"),
                category: ["books", "home", "toys", "garden"][i % 4].to_owned(),
                stock: 5,
            })
            .collect();
        Catalogue::from_items(items)
    }

    #[test]
    fn shoppers_mostly_pick_from_their_favourite_categories() {
        let catalogue = catalogue();
        assert_eq!(catalogue.categories.len(), 4);
        let mut rng = SplitMix64::new(7);
        for _ in 0..20 {
            let tastes = Tastes::draw(&mut rng, &catalogue);
            assert!((1..=2).contains(&tastes.favourites.len()));
            let liked = (0..1000)
                .filter(|_| {
                    let p = tastes.product(&mut rng, &catalogue);
                    tastes.likes(catalogue.products[p].category)
                })
                .count();
            assert!(liked > 850, "{liked} of 1000 in favourite categories");
        }
    }

    #[test]
    fn words_for_searches_skip_short_ones() {
        let catalogue = catalogue();
        assert_eq!(catalogue.products[3].words, ["product", "number"]);
    }
}
