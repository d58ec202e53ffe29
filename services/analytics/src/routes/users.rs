//! `GET /users/{id}/profile`: one user's counts, history, affinities, purchases.

use crate::error::AnalyticsError;
use crate::gather::Partitions;
use actix_web::{HttpResponse, web};
use shopmesh_shared::events::UserId;

#[tracing::instrument(skip(partitions), fields(user_id = %id))]
pub async fn profile(
    id: web::Path<String>,
    partitions: web::Data<Partitions>,
) -> Result<HttpResponse, AnalyticsError> {
    let user = UserId::parse(&id).map_err(|e| AnalyticsError::invalid("id", e.to_string()))?;
    match partitions.user_profile(user).await? {
        Some(profile) => Ok(HttpResponse::Ok().json(profile)),
        None => Err(AnalyticsError::NotFound(format!(
            "no events of user {user} in the partitions of this instance"
        ))),
    }
}
