//! The recommendation pipeline's [`Shards`] over partition states held in
//! memory and their product-keyed view: what the evaluation replays into
//! (one state), and what tests recompute answers with (one per partition).
//! The reads are the service's own (`recommend::score`).

use crate::error::AnalyticsError;
use crate::items::ItemGraph;
use crate::recommend::{
    CatalogueEntry, PartialScore, PopularProduct, RecommenderSettings, Shards, UserSeeds, score,
    seeds,
};
use crate::state::PartitionState;
use shopmesh_shared::events::{ProductId, UserId};

pub struct LocalShards<'a> {
    pub states: Vec<&'a PartitionState>,
    /// The sum of `states`' product-keyed parts.
    pub items: &'a ItemGraph,
    pub settings: RecommenderSettings,
    /// "Now" for the trending windows.
    pub now_ms: i64,
}

impl Shards for LocalShards<'_> {
    async fn seeds(&self, user: UserId) -> Result<UserSeeds, AnalyticsError> {
        Ok(self
            .states
            .iter()
            .find(|s| s.users.contains_key(&user))
            .map(|s| seeds::user_seeds(s, user, &self.settings))
            .unwrap_or_default())
    }

    async fn touch_weights(&self, products: Vec<ProductId>) -> Result<Vec<u64>, AnalyticsError> {
        Ok(score::touch_weights(self.items, &products))
    }

    async fn partial_scores(
        &self,
        seeds: Vec<(ProductId, f64)>,
    ) -> Result<Vec<PartialScore>, AnalyticsError> {
        Ok(score::partial_scores(self.items, &seeds))
    }

    async fn catalogue(
        &self,
        products: Vec<ProductId>,
    ) -> Result<Vec<(ProductId, CatalogueEntry)>, AnalyticsError> {
        Ok(score::catalogue(self.items, &products))
    }

    async fn popular(&self) -> Result<Vec<PopularProduct>, AnalyticsError> {
        Ok(self
            .states
            .iter()
            .flat_map(|s| score::popular(s, self.now_ms))
            .collect())
    }
}
