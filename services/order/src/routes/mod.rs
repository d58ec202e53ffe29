//! HTTP routes of the order service and the state they share.

mod cart;
mod orders;

use crate::catalog::Catalog;
use actix_web::web;
use shopmesh_shared::behaviour::BehaviourPublisher;
use shopmesh_shared::nats::EventPublisher;
use std::sync::Arc;
use tokio::sync::Notify;

/// What every handler may use.
pub struct AppState {
    pub pool: sqlx::AnyPool,
    pub catalog: Catalog,
    pub publisher: EventPublisher,
    pub behaviour: BehaviourPublisher,
    pub outbox_wake: Arc<Notify>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cart", web::get().to(cart::show))
        .route("/cart/items", web::post().to(cart::add_item))
        .route(
            "/cart/items/{product_id}",
            web::delete().to(cart::remove_item),
        )
        .route("/orders", web::post().to(orders::checkout))
        .route("/orders", web::get().to(orders::list))
        .route("/orders/{id}", web::get().to(orders::show))
        .route("/orders/{id}/cancel", web::post().to(orders::cancel));
}
