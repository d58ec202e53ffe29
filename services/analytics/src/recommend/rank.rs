//! From summed partial scores to the answer: cosine normalisation, the
//! exclusions (bought, already in the history, unknown, out of stock), the
//! per-category cap, the trending fill, and a reason for every item.

use super::score::{CatalogueEntry, PartialScore, PopularProduct};
use super::seeds::Seed;
use crate::hash::{FastMap, FastSet};
use crate::state::InteractionKind;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{Category, ProductId};

/// Where a recommendation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// It goes with a product from the user's history (or, for "similar",
    /// with the product asked about).
    Similar,
    /// Popular lately.
    Trending,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub product_id: ProductId,
    /// Similarity score; 0 for trending fill-ins.
    pub score: f64,
    pub category: Option<Category>,
    /// For people: "viewed Desk Lamp", "rated Heat 5/5", "trending in books".
    pub reason: String,
    pub source: Source,
    /// The history product that led to it (similar items only).
    pub because: Option<ProductId>,
}

/// A merged candidate before the catalogue is consulted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub product_id: ProductId,
    pub score: f64,
    pub best_seed: usize,
}

/// Sums the partitions' partials, normalises by `sqrt(n(j))` and keeps the
/// best `limit`, best first (ties: the smaller id, so answers are
/// deterministic).
pub fn merge(partials: impl IntoIterator<Item = PartialScore>, limit: usize) -> Vec<Candidate> {
    let mut merged: FastMap<ProductId, PartialScore> = FastMap::default();
    for partial in partials {
        match merged.get_mut(&partial.product_id) {
            Some(entry) => {
                entry.sum += partial.sum;
                entry.touch_weight += partial.touch_weight;
                if partial.best > entry.best {
                    entry.best = partial.best;
                    entry.best_seed = partial.best_seed;
                }
            }
            None => {
                merged.insert(partial.product_id, partial);
            }
        }
    }
    let mut candidates: Vec<Candidate> = merged
        .into_values()
        .filter(|p| p.touch_weight > 0 && p.sum > 0.0)
        .map(|p| Candidate {
            product_id: p.product_id,
            score: p.sum / (p.touch_weight as f64).sqrt(),
            best_seed: p.best_seed,
        })
        .collect();
    let order = |a: &Candidate, b: &Candidate| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.product_id.cmp(&b.product_id))
    };
    if candidates.len() > limit && limit > 0 {
        candidates.select_nth_unstable_by(limit - 1, order);
    }
    candidates.truncate(limit);
    candidates.sort_by(order);
    candidates
}

/// Builds the answer from candidates (best first) and trending products
/// (best first), skipping `excluded` and whatever the catalogue does not
/// offer. At most `cap` items per category while others are available.
pub struct Ranking<'a> {
    pub k: usize,
    pub cap: usize,
    pub seeds: &'a [Seed],
    pub excluded: &'a FastSet<ProductId>,
    pub catalogue: &'a FastMap<ProductId, CatalogueEntry>,
    /// When false (offline evaluation), products the catalogue does not know
    /// are allowed.
    pub require_catalogue: bool,
}

impl Ranking<'_> {
    fn offered(&self, product_id: &ProductId) -> bool {
        if self.excluded.contains(product_id) {
            return false;
        }
        match self.catalogue.get(product_id) {
            Some(entry) => !self.require_catalogue || entry.recommendable(),
            None => !self.require_catalogue,
        }
    }

    fn category(&self, product_id: &ProductId) -> Option<Category> {
        self.catalogue.get(product_id)?.category.clone()
    }

    fn name(&self, product_id: &ProductId) -> String {
        self.catalogue
            .get(product_id)
            .and_then(|e| e.name.clone())
            .unwrap_or_else(|| product_id.to_string())
    }

    pub fn rank(
        &self,
        candidates: &[Candidate],
        trending: &[PopularProduct],
    ) -> Vec<Recommendation> {
        let similar = candidates
            .iter()
            .filter(|c| self.offered(&c.product_id))
            .map(|c| {
                let seed = self.seeds[c.best_seed];
                Recommendation {
                    product_id: c.product_id,
                    score: c.score,
                    category: self.category(&c.product_id),
                    reason: describe(seed.kind, &self.name(&seed.product_id)),
                    source: Source::Similar,
                    because: Some(seed.product_id),
                }
            });
        let mut answer = diversify(similar, self.k, self.cap);
        if answer.len() < self.k {
            let taken: FastSet<ProductId> = answer.iter().map(|r| r.product_id).collect();
            let fill = trending
                .iter()
                .filter(|p| !taken.contains(&p.product_id) && self.offered(&p.product_id))
                .map(|p| {
                    let category = self.category(&p.product_id).or_else(|| p.category.clone());
                    let reason = match &category {
                        Some(c) => format!("trending in {c}"),
                        None => "trending".to_owned(),
                    };
                    Recommendation {
                        product_id: p.product_id,
                        score: 0.0,
                        category,
                        reason,
                        source: Source::Trending,
                        because: None,
                    }
                });
            let missing = self.k - answer.len();
            answer.extend(diversify(fill, missing, self.cap));
        }
        answer
    }
}

fn describe(kind: InteractionKind, name: &str) -> String {
    match kind {
        InteractionKind::View => format!("viewed {name}"),
        InteractionKind::Cart => format!("added {name} to the cart"),
        InteractionKind::Purchase => format!("bought {name}"),
        InteractionKind::Rating { stars } => format!("rated {name} {stars}/5"),
    }
}

/// The first `k` items, at most `cap` per category; if that leaves fewer
/// than `k`, the skipped ones fill up in order (a shop with one category
/// still gets `k` answers).
pub fn diversify(
    items: impl Iterator<Item = Recommendation>,
    k: usize,
    cap: usize,
) -> Vec<Recommendation> {
    let mut chosen = Vec::with_capacity(k);
    let mut skipped = Vec::new();
    let mut per_category: FastMap<Option<Category>, usize> = FastMap::default();
    for item in items {
        if chosen.len() == k {
            break;
        }
        let count = per_category.entry(item.category.clone()).or_default();
        if item.category.is_some() && *count >= cap {
            skipped.push(item);
        } else {
            *count += 1;
            chosen.push(item);
        }
    }
    let missing = k - chosen.len();
    chosen.extend(skipped.into_iter().take(missing));
    chosen
}

/// Popular products merged over partitions: last 24 h first, then all time.
pub fn merge_popular(partials: impl IntoIterator<Item = PopularProduct>) -> Vec<PopularProduct> {
    let mut merged: FastMap<ProductId, PopularProduct> = FastMap::default();
    for partial in partials {
        match merged.get_mut(&partial.product_id) {
            Some(entry) => {
                entry.last_24h += partial.last_24h;
                entry.all_time += partial.all_time;
                if entry.category.is_none() {
                    entry.category = partial.category;
                }
            }
            None => {
                merged.insert(partial.product_id, partial);
            }
        }
    }
    let mut products: Vec<PopularProduct> = merged.into_values().collect();
    products.sort_by(|a, b| {
        (b.last_24h, b.all_time)
            .cmp(&(a.last_24h, a.all_time))
            .then_with(|| a.product_id.cmp(&b.product_id))
    });
    products
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u128, category: &str) -> Recommendation {
        Recommendation {
            product_id: ProductId::from_uuid(uuid::Uuid::from_u128(n)),
            score: 1.0,
            category: Some(Category::parse(category).unwrap()),
            reason: String::new(),
            source: Source::Trending,
            because: None,
        }
    }

    #[test]
    fn diversity_caps_a_category_while_others_are_available() {
        let items = vec![
            item(1, "books"),
            item(2, "books"),
            item(3, "books"),
            item(4, "games"),
            item(5, "books"),
        ];
        let chosen = diversify(items.into_iter(), 4, 2);
        let ids: Vec<u128> = chosen
            .iter()
            .map(|r| r.product_id.as_uuid().as_u128())
            .collect();
        assert_eq!(ids, vec![1, 2, 4, 3]);
    }

    #[test]
    fn one_category_still_fills_k() {
        let items: Vec<_> = (1..=5).map(|n| item(n, "books")).collect();
        assert_eq!(diversify(items.into_iter(), 5, 2).len(), 5);
    }
}
