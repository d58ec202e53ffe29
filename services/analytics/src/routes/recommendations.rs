//! `GET /recommendations/{user_id}?k=10` and `GET /products/{id}/similar?k=10`:
//! the real-time recommender's answers (see `crate::recommend`).

use super::{parse_k, query_params};
use crate::error::AnalyticsError;
use crate::gather::Partitions;
use crate::recommend::Recommendation;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{ProductId, UserId};

#[derive(Debug, Serialize, Deserialize)]
pub struct UserRecommendations {
    pub user_id: UserId,
    pub items: Vec<Recommendation>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SimilarProducts {
    pub product_id: ProductId,
    pub items: Vec<Recommendation>,
}

#[tracing::instrument(skip(partitions, req), fields(user_id = %id))]
pub async fn for_user(
    req: HttpRequest,
    id: web::Path<String>,
    partitions: web::Data<Partitions>,
) -> Result<HttpResponse, AnalyticsError> {
    let user_id =
        UserId::parse(&id).map_err(|e| AnalyticsError::invalid("user_id", e.to_string()))?;
    let k = parse_k(&query_params(&req)?)?;
    let items = partitions.recommendations(user_id, k).await?;
    Ok(HttpResponse::Ok().json(UserRecommendations { user_id, items }))
}

#[tracing::instrument(skip(partitions, req), fields(product_id = %id))]
pub async fn similar(
    req: HttpRequest,
    id: web::Path<String>,
    partitions: web::Data<Partitions>,
) -> Result<HttpResponse, AnalyticsError> {
    let product_id =
        ProductId::parse(&id).map_err(|e| AnalyticsError::invalid("id", e.to_string()))?;
    let k = parse_k(&query_params(&req)?)?;
    let items = partitions.similar(product_id, k).await?;
    Ok(HttpResponse::Ok().json(SimilarProducts { product_id, items }))
}
