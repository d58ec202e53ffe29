//! HTTP routes of the order service and the state they share.

mod cart;
mod orders;

pub use cart::AddItem;

use crate::catalog::Catalog;
use actix_web::web;
use shopmesh_shared::behaviour::BehaviourPublisher;
use shopmesh_shared::db_writes::WriteGate;
use shopmesh_shared::http::method_not_allowed;
use shopmesh_shared::nats::EventPublisher;
use std::sync::Arc;
use tokio::sync::Notify;

/// What every handler may use.
pub struct AppState {
    pub pool: sqlx::AnyPool,
    /// Every write to `pool` goes through it.
    pub writes: WriteGate,
    pub catalog: Catalog,
    pub publisher: EventPublisher,
    pub behaviour: BehaviourPublisher,
    pub outbox_wake: Arc<Notify>,
    /// Wake the stock releaser after recording a pending release.
    pub release_wake: Arc<Notify>,
}

/// Registers the routes, with a 405 problem for a wrong method.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cart")
            .route(web::get().to(cart::show))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/cart/items")
            .route(web::post().to(cart::add_item))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/cart/items/{product_id}")
            .route(web::delete().to(cart::remove_item))
            .default_service(method_not_allowed("DELETE")),
    )
    .service(
        web::resource("/orders")
            .route(web::post().to(orders::checkout))
            .route(web::get().to(orders::list))
            .default_service(method_not_allowed("GET, POST")),
    )
    .service(
        web::resource("/orders/{id}")
            .route(web::get().to(orders::show))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/orders/{id}/cancel")
            .route(web::post().to(orders::cancel))
            .default_service(method_not_allowed("POST")),
    );
}
