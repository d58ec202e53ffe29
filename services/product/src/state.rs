//! What handlers share: the database, the event publisher for the outbox,
//! the behaviour publisher, the relay's wake-up and the catalogue caches.
//! Cheap to clone.

use crate::cache::{ListingCache, ProductCache};
use crate::domain::Product;
use crate::shared_reads::SharedReads;
use shopmesh_shared::behaviour::BehaviourPublisher;
use shopmesh_shared::db_writes::WriteGate;
use shopmesh_shared::events::{Event, EventMeta, EventPayload, ProductId, Timestamp, UserId};
use shopmesh_shared::nats::EventPublisher;
use sqlx::AnyPool;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub pool: AnyPool,
    /// Every write to `pool` goes through it.
    pub writes: WriteGate,
    pub publisher: EventPublisher,
    pub behaviour: BehaviourPublisher,
    pub outbox_wake: Arc<Notify>,
    /// Products recently read; forget a product after committing a change
    /// to it.
    pub products: Arc<ProductCache>,
    /// Listing pages recently read; forget them all after creating a product.
    pub listings: Arc<ListingCache>,
    /// Reads of one product by id in flight, shared by whoever misses it
    /// meanwhile.
    pub product_reads: Arc<SharedReads<ProductId, Option<Product>>>,
}

impl AppState {
    /// A new event produced by this service.
    pub fn event(user: Option<UserId>, payload: impl Into<EventPayload>) -> Event {
        Event::new(EventMeta::new(crate::NAME, user), payload)
    }
}

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}
