//! `GET /stats`: per owned partition its position, lag, rate, size and
//! snapshot, plus the consumer runner's counters.

use crate::error::AnalyticsError;
use crate::gather::Partitions;
use actix_web::{HttpResponse, web};

#[tracing::instrument(skip(partitions))]
pub async fn stats(partitions: web::Data<Partitions>) -> Result<HttpResponse, AnalyticsError> {
    Ok(HttpResponse::Ok().json(partitions.stats().await?))
}
