//! `POST /products/{id}/ratings`: a signed-in shopper's 1-5 stars, one per
//! shopper and product (a second rating replaces the first).

use super::path_id;
use crate::catalogue;
use crate::domain::Stars;
use crate::error::ProductError;
use crate::repository::ratings;
use crate::state::{AppState, now_ms};
use actix_web::{HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{ProductId, ProductRated};
use shopmesh_shared::http::{AuthenticatedUser, JsonBody};

#[derive(Debug, Deserialize)]
pub struct RateProduct {
    stars: i64,
}

impl RateProduct {
    /// The stars, checked; public so that the fuzz harness runs this check.
    pub fn validate(self) -> Result<Stars, ProductError> {
        Stars::parse(self.stars).map_err(|e| ProductError::invalid("stars", e))
    }
}

/// The product's ratings after this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingBody {
    pub product_id: ProductId,
    pub stars: u8,
    pub rating_count: i64,
    pub rating_mean: f64,
}

/// 201 with the product's new count and mean; 404 for an unknown product.
/// Emits `product.rated` as a behaviour event.
#[tracing::instrument(name = "rate product", skip_all, fields(product_id = %path))]
pub async fn rate(
    user: AuthenticatedUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: JsonBody<RateProduct>,
) -> Result<HttpResponse, ProductError> {
    let id = path_id(&path)?;
    let stars = body.into_inner().validate()?;
    let mut tx = state
        .writes
        .begin(&state.pool)
        .await
        .context("begin rating")?;
    let rating = ratings::rate(&mut tx, id, user.0, stars, now_ms())
        .await
        .context("record rating")?
        .ok_or(ProductError::NotFound(id))?;
    tx.commit().await.context("commit rating")?;
    catalogue::changed(&state, [&id]).await;
    state.behaviour.emit(AppState::event(
        Some(user.0),
        ProductRated {
            product_id: id,
            category: rating.category.clone(),
            stars: rating.stars,
        },
    ));
    Ok(HttpResponse::Created().json(RatingBody {
        product_id: id,
        stars: rating.stars,
        rating_count: rating.rating_count,
        rating_mean: rating.rating_mean(),
    }))
}
