//! The recommendation steps over any set of partition states: the service
//! runs them over its partition actors (`gather`), the evaluation over one
//! in-memory state (`eval`), so both use the same code.

use super::RecommenderSettings;
use super::rank::{Ranking, Recommendation, merge, merge_popular};
use super::score::{CatalogueEntry, PartialScore, PopularProduct};
use super::seeds::{Seed, UserSeeds};
use crate::error::AnalyticsError;
use crate::hash::{FastMap, FastSet};
use crate::state::InteractionKind;
use shopmesh_shared::events::{ProductId, UserId};
use std::future::Future;

/// Reads a recommendation needs: seeds from the user's partition, scores,
/// touch weights and catalogue from the summed product-keyed view, and each
/// partition's part of the trending figures (the pipeline merges those).
pub trait Shards {
    fn seeds(&self, user: UserId) -> impl Future<Output = Result<UserSeeds, AnalyticsError>>;
    /// Each product's touch weight (same order).
    fn touch_weights(
        &self,
        products: Vec<ProductId>,
    ) -> impl Future<Output = Result<Vec<u64>, AnalyticsError>>;
    fn partial_scores(
        &self,
        seeds: Vec<(ProductId, f64)>,
    ) -> impl Future<Output = Result<Vec<PartialScore>, AnalyticsError>>;
    fn catalogue(
        &self,
        products: Vec<ProductId>,
    ) -> impl Future<Output = Result<Vec<(ProductId, CatalogueEntry)>, AnalyticsError>>;
    fn popular(&self) -> impl Future<Output = Result<Vec<PopularProduct>, AnalyticsError>>;
}

/// What a caller may add to a request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub k: usize,
    /// Products never to recommend besides the bought ones and the seeds
    /// (the evaluation passes a user's whole training history).
    pub exclude: FastSet<ProductId>,
    /// False only for offline evaluation, whose items are not in a catalogue.
    pub require_catalogue: bool,
}

/// The top `request.k` products for `user`.
pub async fn recommend<S: Shards>(
    shards: &S,
    user: UserId,
    request: Request,
    settings: &RecommenderSettings,
) -> Result<Vec<Recommendation>, AnalyticsError> {
    let UserSeeds { seeds, purchased } = shards.seeds(user).await?;
    let mut excluded = request.exclude;
    excluded.extend(purchased);
    excluded.extend(seeds.iter().map(|s| s.product_id));
    rank_from_seeds(
        shards,
        &seeds,
        &excluded,
        request.k,
        request.require_catalogue,
        settings,
    )
    .await
}

/// The top `k` products that go with `product`, as if a user had viewed
/// only it.
pub async fn similar<S: Shards>(
    shards: &S,
    product: ProductId,
    k: usize,
    settings: &RecommenderSettings,
) -> Result<Vec<Recommendation>, AnalyticsError> {
    let seeds = [Seed {
        product_id: product,
        kind: InteractionKind::View,
        weight: 1.0,
    }];
    let excluded: FastSet<ProductId> = seeds.iter().map(|s| s.product_id).collect();
    rank_from_seeds(shards, &seeds, &excluded, k, true, settings).await
}

async fn rank_from_seeds<S: Shards>(
    shards: &S,
    seeds: &[Seed],
    excluded: &FastSet<ProductId>,
    k: usize,
    require_catalogue: bool,
    settings: &RecommenderSettings,
) -> Result<Vec<Recommendation>, AnalyticsError> {
    let candidates = if seeds.is_empty() {
        Vec::new()
    } else {
        let ids: Vec<ProductId> = seeds.iter().map(|s| s.product_id).collect();
        let n = shards.touch_weights(ids).await?;
        // One factor per seed, in order: partial scores name seeds by index.
        // A seed no user touched (n = 0) has no co-occurrence either.
        let factors = seeds
            .iter()
            .zip(&n)
            .map(|(seed, &n)| {
                let factor = if n > 0 {
                    seed.weight / (n as f64).sqrt()
                } else {
                    0.0
                };
                (seed.product_id, factor)
            })
            .collect();
        merge(
            shards.partial_scores(factors).await?,
            shortlist(k, excluded.len()),
        )
    };

    let mut catalogue: FastMap<ProductId, CatalogueEntry> = FastMap::default();
    let lookup = candidates
        .iter()
        .map(|c| c.product_id)
        .chain(seeds.iter().map(|s| s.product_id))
        .collect();
    absorb(&mut catalogue, shards.catalogue(lookup).await?);
    let cap = ((k as f64 * settings.category_share).ceil() as usize).max(1);
    let ranking = |catalogue: &FastMap<ProductId, CatalogueEntry>, trending| {
        Ranking {
            k,
            cap,
            seeds,
            excluded,
            catalogue,
            require_catalogue,
        }
        .rank(&candidates, trending)
    };
    let answer = ranking(&catalogue, &[]);
    if answer.len() == k {
        return Ok(answer);
    }
    // Too few (a new user, a sparse history, stock): fill with trending.
    let mut popular = merge_popular(shards.popular().await?);
    popular.truncate(shortlist(k, excluded.len()));
    absorb(
        &mut catalogue,
        shards
            .catalogue(popular.iter().map(|p| p.product_id).collect())
            .await?,
    );
    Ok(ranking(&catalogue, &popular))
}

/// Enough candidates that exclusions and stock rarely leave fewer than `k`.
fn shortlist(k: usize, excluded: usize) -> usize {
    4 * k + excluded
}

fn absorb(
    catalogue: &mut FastMap<ProductId, CatalogueEntry>,
    entries: Vec<(ProductId, CatalogueEntry)>,
) {
    for (id, entry) in entries {
        match catalogue.get_mut(&id) {
            Some(known) => known.merge(entry),
            None => {
                catalogue.insert(id, entry);
            }
        }
    }
}
