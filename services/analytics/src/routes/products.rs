//! `GET /products/{id}/stats` (all-time and windowed counters) and
//! `GET /products/{id}/neighbours?k=` (co-occurring products, for the
//! recommender).

use super::{parse_k, query_params};
use crate::error::AnalyticsError;
use crate::gather::{Neighbour, Partitions};
use crate::state::ProductFigures;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::ProductId;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProductStats {
    pub product_id: ProductId,
    #[serde(flatten)]
    pub figures: ProductFigures,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProductNeighbours {
    pub product_id: ProductId,
    pub neighbours: Vec<Neighbour>,
}

fn product_id(raw: &str) -> Result<ProductId, AnalyticsError> {
    ProductId::parse(raw).map_err(|e| AnalyticsError::invalid("id", e.to_string()))
}

#[tracing::instrument(skip(partitions), fields(product_id = %id))]
pub async fn stats(
    id: web::Path<String>,
    partitions: web::Data<Partitions>,
) -> Result<HttpResponse, AnalyticsError> {
    let product_id = product_id(&id)?;
    match partitions.product(product_id).await? {
        Some(figures) => Ok(HttpResponse::Ok().json(ProductStats {
            product_id,
            figures,
        })),
        None => Err(AnalyticsError::NotFound(format!(
            "no events of product {product_id} in the partitions of this instance"
        ))),
    }
}

#[tracing::instrument(skip(partitions, req), fields(product_id = %id))]
pub async fn neighbours(
    req: HttpRequest,
    id: web::Path<String>,
    partitions: web::Data<Partitions>,
) -> Result<HttpResponse, AnalyticsError> {
    let product_id = product_id(&id)?;
    let k = parse_k(&query_params(&req)?)?;
    let neighbours = partitions.neighbours(product_id, k).await?;
    Ok(HttpResponse::Ok().json(ProductNeighbours {
        product_id,
        neighbours,
    }))
}
