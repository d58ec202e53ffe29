//! A user's seeds: the recent distinct products that recommendations start
//! from, each weighted by recency and by what the user did with it. Read in
//! the user's partition.

use super::RecommenderSettings;
use crate::state::{InteractionKind, PartitionState};
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{ProductId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Seed {
    pub product_id: ProductId,
    /// The user's latest interaction with it (it names the reason).
    pub kind: InteractionKind,
    pub weight: f64,
}

/// What the user's partition knows for a recommendation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserSeeds {
    /// Newest first.
    pub seeds: Vec<Seed>,
    /// Never recommended again.
    pub purchased: Vec<ProductId>,
}

impl InteractionKind {
    /// How much an interaction says about a taste: view 1 < cart 3 <
    /// purchase 5; a rating weighs its stars.
    pub fn preference(self) -> f64 {
        match self {
            InteractionKind::Rating { stars } => f64::from(stars),
            other => other.weight() as f64,
        }
    }
}

/// The seeds of `user`; empty when the partition has never seen the user.
pub fn user_seeds(
    state: &PartitionState,
    user: UserId,
    settings: &RecommenderSettings,
) -> UserSeeds {
    let Some(user) = state.users.get(&user) else {
        return UserSeeds::default();
    };
    let mut weight = 1.0;
    let seeds = user
        .recent_products
        .iter()
        .map(|&product_id| {
            // The history holds more interactions than the window holds
            // products, so the latest one with this product is almost always
            // there; a view is the least it can have been.
            let kind = user
                .recent
                .iter()
                .find(|i| i.product_id == product_id)
                .map_or(InteractionKind::View, |i| i.kind);
            let seed = Seed {
                product_id,
                kind,
                weight: weight * kind.preference(),
            };
            weight *= settings.history_decay;
            seed
        })
        .collect();
    UserSeeds {
        seeds,
        purchased: user.purchased.iter().copied().collect(),
    }
}
