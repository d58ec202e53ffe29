//! HTTP routes: which handler answers which method and path.
//!
//! Path ids that are not UUIDs are a 400 problem naming `id` (not a 404): the
//! request is malformed, whatever the catalogue holds.

mod optional_user;
mod products;
mod ratings;

pub use optional_user::OptionalUser;
pub use products::{CreateProduct, PatchProduct, ProductBody, list_query};
pub use ratings::{RateProduct, RatingBody};

use crate::error::ProductError;
use actix_web::web;
use shopmesh_shared::events::ProductId;
use shopmesh_shared::http::method_not_allowed;

/// Registers every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/products")
            .route(web::get().to(products::list))
            .route(web::post().to(products::create))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/products/{id}")
            .route(web::get().to(products::get))
            .route(web::patch().to(products::update))
            .default_service(method_not_allowed("GET, PATCH")),
    )
    .service(
        web::resource("/products/{id}/ratings")
            .route(web::post().to(ratings::rate))
            .default_service(method_not_allowed("POST")),
    );
}

/// The `{id}` path segment as a product id.
fn path_id(raw: &str) -> Result<ProductId, ProductError> {
    ProductId::parse(raw).map_err(|e| ProductError::invalid("id", e))
}
