//! Scatter-gather reads: every query is sent to each local partition actor
//! and their partial answers are merged here. Per-user figures live in one
//! partition; product and funnel figures are sums over partitions, which is
//! also how answers from several instances merge (each answers for the
//! partitions it owns).

use crate::actor::{Inspect, PartitionActor, PartitionView};
use crate::error::AnalyticsError;
use crate::items::ItemGraph;
use crate::recommend::{
    self, CatalogueEntry, PartialScore, PopularProduct, Recommendation, RecommenderSettings,
    Shards, UserSeeds, score, seeds,
};
use crate::settings::Settings;
use crate::snapshot::{self, SnapshotInfo};
use crate::state::{FunnelFigures, ProductFigures, ScoredProduct, StateSize, UserProfile};
use crate::window::WindowKind;
use actix::Addr;
use async_nats::jetstream;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{Category, ProductId, UserId};
use shopmesh_shared::metrics::metrics;
use shopmesh_shared::nats::{ConsumerStats, ConsumerStatsSnapshot};
use shopmesh_shared::settings::StreamSettings;
use shopmesh_shared::subjects::{Partition, partition_for};
use std::collections::HashMap;
use std::sync::Arc;

/// The local partitions and what /stats reports about the consumer.
#[derive(Clone)]
pub struct Partitions {
    actors: Arc<Vec<(Partition, Addr<PartitionActor>)>>,
    streams: StreamSettings,
    js: jetstream::Context,
    consumer: Arc<ConsumerStats>,
    instance_index: u16,
    instance_count: u16,
    recommender: RecommenderSettings,
    items: Arc<ItemGraph>,
}

/// A neighbour in the co-occurrence graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    pub product_id: ProductId,
    pub weight: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionStats {
    pub partition: u16,
    pub last_sequence: u64,
    pub applied: u64,
    /// Messages not yet delivered or not yet acknowledged (consumer info).
    pub lag: Option<u64>,
    pub events_per_sec: f64,
    pub state: StateSize,
    pub snapshot: Option<SnapshotStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStats {
    pub bytes: usize,
    pub age_ms: i64,
    pub last_sequence: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerCounters {
    pub handled: u64,
    pub nakked: u64,
    pub dead_lettered: u64,
    pub skipped_newer: u64,
    pub dead_letter_failures: u64,
}

impl From<ConsumerStatsSnapshot> for ConsumerCounters {
    fn from(s: ConsumerStatsSnapshot) -> Self {
        Self {
            handled: s.handled,
            nakked: s.nakked,
            dead_lettered: s.dead_lettered,
            skipped_newer: s.skipped_newer,
            dead_letter_failures: s.dead_letter_failures,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStats {
    pub instance_index: u16,
    pub instance_count: u16,
    pub partitions: Vec<PartitionStats>,
    pub consumer: ConsumerCounters,
}

impl Partitions {
    /// The reads over `actors` (this instance's partitions, as `settings`
    /// assigns them) and their product-keyed view `items`.
    pub fn new(
        actors: Vec<(Partition, Addr<PartitionActor>)>,
        settings: &Settings,
        js: jetstream::Context,
        consumer: Arc<ConsumerStats>,
        items: Arc<ItemGraph>,
    ) -> Self {
        Self {
            actors: Arc::new(actors),
            streams: settings.backbone.streams.clone(),
            js,
            consumer,
            instance_index: settings.instance_index,
            instance_count: settings.instance_count,
            recommender: settings.recommender,
            items,
        }
    }

    /// The user's partition's actor, when this instance owns it.
    fn user_partition(&self, user: UserId) -> Option<&Addr<PartitionActor>> {
        let partition = partition_for(Some(&user), self.streams.partitions);
        self.actors
            .iter()
            .find(|(p, _)| *p == partition)
            .map(|(_, addr)| addr)
    }

    /// The top `k` products for `user` (see [`crate::recommend`]).
    pub async fn recommendations(
        &self,
        user: UserId,
        k: usize,
    ) -> Result<Vec<Recommendation>, AnalyticsError> {
        let timer = metrics().recommendation_duration.start_timer();
        let request = recommend::pipeline::Request {
            k,
            require_catalogue: true,
            ..Default::default()
        };
        let answer = recommend::recommend(self, user, request, &self.recommender).await;
        timer.observe_duration();
        answer
    }

    /// The top `k` products that go with `product`.
    pub async fn similar(
        &self,
        product: ProductId,
        k: usize,
    ) -> Result<Vec<Recommendation>, AnalyticsError> {
        let timer = metrics().recommendation_duration.start_timer();
        let answer = recommend::similar(self, product, k, &self.recommender).await;
        timer.observe_duration();
        answer
    }

    async fn ask<R, F>(addr: &Addr<PartitionActor>, read: F) -> Result<R, AnalyticsError>
    where
        R: Send + 'static,
        F: FnOnce(&PartitionView<'_>) -> R + Send + 'static,
    {
        addr.send(Inspect(Box::new(read)))
            .await
            .map_err(|e| AnalyticsError::Unavailable(e.to_string()))
    }

    /// Runs `read` on every local partition, concurrently.
    async fn scatter<R, F>(&self, read: F) -> Result<Vec<R>, AnalyticsError>
    where
        R: Send + 'static,
        F: Fn(&PartitionView<'_>) -> R + Send + Sync + Clone + 'static,
    {
        join_all(self.actors.iter().map(|(_, addr)| {
            let read = read.clone();
            Self::ask(addr, move |view| read(view))
        }))
        .await
        .into_iter()
        .collect()
    }

    /// The user's profile, from the one partition that holds the user; `None`
    /// when it has no events or its partition belongs to another instance.
    pub async fn user_profile(&self, user: UserId) -> Result<Option<UserProfile>, AnalyticsError> {
        let Some(addr) = self.user_partition(user) else {
            return Ok(None);
        };
        Self::ask(addr, move |view| {
            view.state
                .user_profile(user, view.config.affinity_half_life)
        })
        .await
    }

    pub async fn product(
        &self,
        product: ProductId,
    ) -> Result<Option<ProductFigures>, AnalyticsError> {
        let partials = self
            .scatter(move |view| view.state.product_figures(product, view.now_ms))
            .await?;
        Ok(merge_products(partials.into_iter().flatten()))
    }

    pub async fn trending(
        &self,
        window: WindowKind,
        category: Option<Category>,
        k: usize,
    ) -> Result<Vec<ScoredProduct>, AnalyticsError> {
        let partials = self
            .scatter(move |view| {
                view.state
                    .scored_products(window, category.as_ref(), view.now_ms)
            })
            .await?;
        Ok(top_k(partials.into_iter().flatten(), k))
    }

    pub async fn funnel(&self) -> Result<FunnelFigures, AnalyticsError> {
        let partials = self.scatter(|view| view.state.funnel_figures()).await?;
        let mut total = FunnelFigures::default();
        for partial in &partials {
            total.add(partial);
        }
        Ok(total)
    }

    pub async fn neighbours(
        &self,
        product: ProductId,
        k: usize,
    ) -> Result<Vec<Neighbour>, AnalyticsError> {
        let partials = self
            .scatter(move |view| view.state.neighbours(product))
            .await?;
        Ok(merge_neighbours(partials.into_iter().flatten(), k))
    }

    pub async fn stats(&self) -> Result<ServiceStats, AnalyticsError> {
        let partials = self
            .scatter(|view| {
                let snapshot = view.snapshot.map(|s: SnapshotInfo| SnapshotStats {
                    bytes: s.bytes,
                    age_ms: view.now_ms - s.taken_at_ms,
                    last_sequence: s.last_sequence,
                });
                PartitionStats {
                    partition: view.partition.index(),
                    last_sequence: view.state.last_sequence,
                    applied: view.state.applied,
                    lag: None,
                    events_per_sec: view.events_per_sec,
                    state: view.state.size(),
                    snapshot,
                }
            })
            .await?;
        let lags = join_all(
            self.actors
                .iter()
                .map(|(partition, _)| snapshot::consumer_lag(&self.js, &self.streams, *partition)),
        )
        .await;
        let partitions = partials
            .into_iter()
            .zip(lags)
            .map(|(stats, lag)| PartitionStats { lag, ..stats })
            .collect();
        Ok(ServiceStats {
            instance_index: self.instance_index,
            instance_count: self.instance_count,
            partitions,
            consumer: self.consumer.snapshot().into(),
        })
    }
}

impl Shards for Partitions {
    async fn seeds(&self, user: UserId) -> Result<UserSeeds, AnalyticsError> {
        let Some(addr) = self.user_partition(user) else {
            return Ok(UserSeeds::default());
        };
        let settings = self.recommender;
        Self::ask(addr, move |view| {
            seeds::user_seeds(view.state, user, &settings)
        })
        .await
    }

    async fn touch_weights(&self, products: Vec<ProductId>) -> Result<Vec<u64>, AnalyticsError> {
        Ok(score::touch_weights(&self.items, &products))
    }

    async fn partial_scores(
        &self,
        seeds: Vec<(ProductId, f64)>,
    ) -> Result<Vec<PartialScore>, AnalyticsError> {
        Ok(score::partial_scores(&self.items, &seeds))
    }

    async fn catalogue(
        &self,
        products: Vec<ProductId>,
    ) -> Result<Vec<(ProductId, CatalogueEntry)>, AnalyticsError> {
        Ok(score::catalogue(&self.items, &products))
    }

    async fn popular(&self) -> Result<Vec<PopularProduct>, AnalyticsError> {
        let parts = self
            .scatter(|view| score::popular(view.state, view.now_ms))
            .await?;
        Ok(parts.into_iter().flatten().collect())
    }
}

/// Sums partial product figures; `None` when no partition knows the product.
pub fn merge_products(
    partials: impl IntoIterator<Item = ProductFigures>,
) -> Option<ProductFigures> {
    let mut total: Option<ProductFigures> = None;
    for partial in partials {
        total
            .get_or_insert_with(ProductFigures::default)
            .add(&partial);
    }
    total
}

/// Sums partial scores per product and keeps the `k` best (ties: smaller id).
pub fn top_k(partials: impl IntoIterator<Item = ScoredProduct>, k: usize) -> Vec<ScoredProduct> {
    let mut merged: HashMap<ProductId, ScoredProduct> = HashMap::new();
    for partial in partials {
        match merged.get_mut(&partial.product_id) {
            Some(entry) => {
                entry.score += partial.score;
                if entry.category.is_none() {
                    entry.category = partial.category;
                }
            }
            None => {
                merged.insert(partial.product_id, partial);
            }
        }
    }
    let mut products: Vec<ScoredProduct> = merged.into_values().collect();
    products.sort_by(|a, b| b.score.cmp(&a.score).then(a.product_id.cmp(&b.product_id)));
    products.truncate(k);
    products
}

/// Sums partial neighbour weights and keeps the `k` heaviest (ties: smaller id).
pub fn merge_neighbours(
    partials: impl IntoIterator<Item = (ProductId, u64)>,
    k: usize,
) -> Vec<Neighbour> {
    let mut merged: HashMap<ProductId, u64> = HashMap::new();
    for (product_id, weight) in partials {
        *merged.entry(product_id).or_default() += weight;
    }
    let mut neighbours: Vec<Neighbour> = merged
        .into_iter()
        .map(|(product_id, weight)| Neighbour { product_id, weight })
        .collect();
    neighbours.sort_by(|a, b| {
        b.weight
            .cmp(&a.weight)
            .then(a.product_id.cmp(&b.product_id))
    });
    neighbours.truncate(k);
    neighbours
}
