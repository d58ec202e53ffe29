//! The reads a recommendation makes: similarity sums, touch weights and
//! catalogue entries from the product-keyed [`ItemGraph`], and each
//! partition's activity figures for trending.

pub use crate::items::CatalogueEntry;
use crate::items::ItemGraph;
use crate::state::PartitionState;
use crate::sums::NeighbourSums;
use crate::window::WindowKind;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{Category, ProductId};

/// One candidate's partial score from one partition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PartialScore {
    pub product_id: ProductId,
    /// `sum_h factor(h) * co_p(h, j)`.
    pub sum: f64,
    /// This partition's part of `n(j)`.
    pub touch_weight: u64,
    /// Index of the seed contributing most here, and how much.
    pub best_seed: usize,
    pub best: f64,
}

/// Each product's touch weight, summed over partitions, in order.
pub fn touch_weights(graph: &ItemGraph, products: &[ProductId]) -> Vec<u64> {
    products.iter().map(|p| graph.touch_weight(p)).collect()
}

/// The catalogue's entries for `products` (only the known ones).
pub fn catalogue(graph: &ItemGraph, products: &[ProductId]) -> Vec<(ProductId, CatalogueEntry)> {
    products
        .iter()
        .filter_map(|p| Some((*p, graph.catalogue_entry(p)?)))
        .collect()
}

/// For seeds given as `(product, factor)`, with `factor = w(h)/sqrt(n(h))`:
/// every co-occurring product with its score sum over all the seeds (the
/// seeds included; the ranking drops them), from the summed product-keyed
/// view. Sums go into arrays indexed by the view's dense product indexes.
pub fn partial_scores(graph: &ItemGraph, seeds: &[(ProductId, f64)]) -> Vec<PartialScore> {
    let mut sums: Vec<f64> = vec![0.0; graph.product_count()];
    let mut best: Vec<(f64, usize)> = vec![(f64::NEG_INFINITY, 0); sums.len()];
    let mut seen: Vec<u32> = Vec::new();
    for (index, &(seed, factor)) in seeds.iter().enumerate() {
        graph.with_neighbours(&seed, |neighbours| {
            for (j, co) in neighbours.into_iter().flat_map(NeighbourSums::iter) {
                let j_at = j as usize;
                if j_at >= sums.len() {
                    // Interned after the arrays were sized.
                    sums.resize(j_at + 1, 0.0);
                    best.resize(j_at + 1, (f64::NEG_INFINITY, 0));
                }
                if best[j_at].0 == f64::NEG_INFINITY {
                    seen.push(j);
                }
                let contribution = factor * co as f64;
                sums[j_at] += contribution;
                if contribution > best[j_at].0 {
                    best[j_at] = (contribution, index);
                }
            }
        });
    }
    let ids: Vec<ProductId> =
        graph.with_products(|products| seen.iter().map(|&j| products[j as usize]).collect());
    seen.iter()
        .zip(ids)
        .map(|(&j, product_id)| PartialScore {
            product_id,
            sum: sums[j as usize],
            touch_weight: graph.touch_weight(&product_id),
            best_seed: best[j as usize].1,
            best: best[j as usize].0,
        })
        .collect()
}

/// A product's activity for trending: last 24 hours, then all time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopularProduct {
    pub product_id: ProductId,
    pub category: Option<Category>,
    pub last_24h: u64,
    pub all_time: u64,
}

/// Every product with any activity in this partition.
pub fn popular(state: &PartitionState, now_ms: i64) -> Vec<PopularProduct> {
    let day = WindowKind::Day;
    state
        .products
        .iter()
        .filter_map(|(&product_id, p)| {
            let all_time = p.all_time.activity_score();
            (all_time > 0).then(|| PopularProduct {
                product_id,
                category: p.category.clone(),
                last_24h: p.windows[day.index()].sum(day, now_ms).activity_score(),
                all_time,
            })
        })
        .collect()
}
