//! What handlers share: the database, the event publisher for the outbox,
//! the behaviour publisher and the relay's wake-up. Cheap to clone.

use shopmesh_shared::behaviour::BehaviourPublisher;
use shopmesh_shared::db::DatabaseKind;
use shopmesh_shared::events::{Event, EventMeta, EventPayload, Timestamp, UserId};
use shopmesh_shared::nats::EventPublisher;
use sqlx::AnyPool;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub pool: AnyPool,
    pub db_kind: DatabaseKind,
    pub publisher: EventPublisher,
    pub behaviour: BehaviourPublisher,
    pub outbox_wake: Arc<Notify>,
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
