//! `GET /trending?window=1m|1h|24h&category=&k=10`: the products with the most
//! activity (views + 3 x cart adds + 5 x purchases) in a sliding window.

use super::{parse_k, query_params};
use crate::error::AnalyticsError;
use crate::gather::Partitions;
use crate::state::ScoredProduct;
use crate::window::WindowKind;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::Category;
use std::collections::HashMap;

#[derive(Debug, Serialize, Deserialize)]
pub struct Trending {
    pub window: WindowKind,
    pub category: Option<Category>,
    pub k: usize,
    pub products: Vec<ScoredProduct>,
}

/// The parameters of `GET /trending`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendingQuery {
    pub window: WindowKind,
    pub category: Option<Category>,
    pub k: usize,
}

impl TrendingQuery {
    /// Defaults: the last hour, every category, 10 products.
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, AnalyticsError> {
        let window = match params.get("window") {
            None => WindowKind::OneHour,
            Some(raw) => WindowKind::parse(raw)
                .ok_or_else(|| AnalyticsError::invalid("window", "window must be 1m, 1h or 24h"))?,
        };
        let category = match params.get("category").filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => Some(
                Category::parse(raw)
                    .map_err(|e| AnalyticsError::invalid("category", e.to_string()))?,
            ),
        };
        Ok(Self {
            window,
            category,
            k: parse_k(params)?,
        })
    }
}

#[tracing::instrument(skip(partitions, req))]
pub async fn trending(
    req: HttpRequest,
    partitions: web::Data<Partitions>,
) -> Result<HttpResponse, AnalyticsError> {
    let TrendingQuery {
        window,
        category,
        k,
    } = TrendingQuery::parse(&query_params(&req)?)?;
    let products = partitions.trending(window, category.clone(), k).await?;
    Ok(HttpResponse::Ok().json(Trending {
        window,
        category,
        k,
        products,
    }))
}
