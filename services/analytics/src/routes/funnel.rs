//! `GET /funnel`: distinct viewers, carters and buyers, overall and per
//! category, with conversion rates.

use crate::error::AnalyticsError;
use crate::gather::Partitions;
use crate::state::FunnelCounts;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FunnelStage {
    pub viewers: u64,
    pub carters: u64,
    pub buyers: u64,
    /// carters / viewers (0 without viewers); likewise below.
    pub view_to_cart: f64,
    pub cart_to_purchase: f64,
    pub view_to_purchase: f64,
}

impl From<FunnelCounts> for FunnelStage {
    fn from(c: FunnelCounts) -> Self {
        let rate = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Self {
            viewers: c.viewers,
            carters: c.carters,
            buyers: c.buyers,
            view_to_cart: rate(c.carters, c.viewers),
            cart_to_purchase: rate(c.buyers, c.carters),
            view_to_purchase: rate(c.buyers, c.viewers),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    pub overall: FunnelStage,
    pub by_category: BTreeMap<String, FunnelStage>,
}

#[tracing::instrument(skip(partitions))]
pub async fn funnel(partitions: web::Data<Partitions>) -> Result<HttpResponse, AnalyticsError> {
    let figures = partitions.funnel().await?;
    Ok(HttpResponse::Ok().json(Funnel {
        overall: figures.overall.into(),
        by_category: figures
            .by_category
            .into_iter()
            .map(|(c, n)| (c.as_str().to_owned(), n.into()))
            .collect(),
    }))
}
