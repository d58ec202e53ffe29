//! The event model: what travels on the bus, in memory.
//!
//! An [`Event`] is an envelope ([`EventMeta`]: id, time, producer, user) plus a
//! typed [`EventPayload`]. The event type and its schema version are derived
//! from the payload, so they can never disagree with it; on the wire they travel
//! as NATS headers (see `codec` and `nats::headers`).
//!
//! # Schema evolution
//!
//! Running consumers must keep working while producers change. The rules:
//!
//! 1. **A layout, once released, is frozen.** The bytes of (event type, schema
//!    version) never change. bincode is positional, so adding, removing or
//!    reordering a field *is* a new schema version. The golden fixtures in
//!    `shared/tests/fixtures/` fail on any accidental change.
//! 2. **A change is a new version.** Add a struct for version N+1, keep the
//!    decoder for version N in `codec` and convert ("upcast") it to the newest
//!    in-memory type with defaults for the new fields.
//! 3. **Readers first, writers second.** Deploy consumers that read N+1 before
//!    any producer writes it. A consumer that meets a version newer than it knows
//!    gets `DecodeError::UnsupportedSchemaVersion`: the consumer runner skips the
//!    message and counts it; the message stays in the stream for replay after
//!    the upgrade. It is never dead-lettered: it is not malformed.
//! 4. **New event types are free.** Add a variant and a struct. The event type
//!    travels in a header, so an older consumer recognises an unknown type without
//!    decoding the body, skips it and counts it.
//! 5. **Names are forever.** An event type's name is never reused for another
//!    meaning; a retired type keeps its decoder as long as the stream's retention
//!    keeps its messages.
//!
//! Wire encoding itself (`Shopmesh-Encoding: bincode2`) is versioned the same
//! way: a new encoding gets a new header value, and a consumer refuses one it
//! does not know.

mod ids;
pub mod json;
mod payload;

pub use ids::{EventId, InvalidId, OrderId, ProductId, UserId};
pub use payload::*;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC. Integers travel through every
/// database and encoding unchanged, unlike calendar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(since_epoch.as_millis() as i64)
    }

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }
}

/// The envelope: what every event carries besides its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// UUIDv7: unique, and ordered by creation time.
    pub event_id: EventId,
    pub occurred_at: Timestamp,
    /// The service that produced the event ("order", "product", ...).
    pub producer: String,
    /// The user the event is about, when there is one; it chooses the partition.
    pub user_id: Option<UserId>,
}

impl EventMeta {
    /// A fresh envelope: new id, now.
    pub fn new(producer: impl Into<String>, user_id: Option<UserId>) -> Self {
        Self {
            event_id: EventId::new_v7(),
            occurred_at: Timestamp::now(),
            producer: producer.into(),
            user_id,
        }
    }
}

/// One event: envelope plus typed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub meta: EventMeta,
    pub payload: EventPayload,
}

impl Event {
    pub fn new(meta: EventMeta, payload: impl Into<EventPayload>) -> Self {
        Self {
            meta,
            payload: payload.into(),
        }
    }

    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }

    pub fn schema_version(&self) -> u16 {
        self.event_type().schema_version()
    }
}

/// Declares every event type once: its variant, payload struct, domain, action
/// and current schema version. Everything that lists event types derives from
/// this table, so a new type cannot be half-added.
macro_rules! event_types {
    ($( $variant:ident($payload:ident) => $domain:literal, $action:literal, $version:literal; )+) => {
        /// The kinds of event, named `domain.action` on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventType {
            $( $variant, )+
        }

        impl EventType {
            /// Every event type, in declaration order.
            pub const ALL: &'static [EventType] = &[$( EventType::$variant, )+];

            /// The wire name, `domain.action`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( EventType::$variant => concat!($domain, ".", $action), )+
                }
            }

            /// The first subject token after the prefix: `user`, `product`, `cart`, `order`.
            pub const fn domain(self) -> &'static str {
                match self {
                    $( EventType::$variant => $domain, )+
                }
            }

            /// The second subject token: `viewed`, `placed`, ...
            pub const fn action(self) -> &'static str {
                match self {
                    $( EventType::$variant => $action, )+
                }
            }

            /// The schema version this build writes.
            pub const fn schema_version(self) -> u16 {
                match self {
                    $( EventType::$variant => $version, )+
                }
            }

            /// [`EventType::schema_version`] as header text.
            pub const fn schema_version_str(self) -> &'static str {
                match self {
                    $( EventType::$variant => stringify!($version), )+
                }
            }

            /// The type for a wire name, or `None` for a type this build does not know.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $( concat!($domain, ".", $action) => Some(EventType::$variant), )+
                    _ => None,
                }
            }
        }

        /// The typed payload of an event, one variant per event type.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum EventPayload {
            $( $variant($payload), )+
        }

        impl EventPayload {
            pub fn event_type(&self) -> EventType {
                match self {
                    $( EventPayload::$variant(_) => EventType::$variant, )+
                }
            }
        }

        $(
            impl From<$payload> for EventPayload {
                fn from(payload: $payload) -> Self {
                    EventPayload::$variant(payload)
                }
            }
        )+
    };
}

event_types! {
    UserRegistered(UserRegistered) => "user", "registered", 1;
    UserLoggedIn(UserLoggedIn) => "user", "logged_in", 1;
    ProductCreated(ProductCreated) => "product", "created", 1;
    ProductUpdated(ProductUpdated) => "product", "updated", 1;
    ProductViewed(ProductViewed) => "product", "viewed", 1;
    ProductSearched(ProductSearched) => "product", "searched", 1;
    ProductRated(ProductRated) => "product", "rated", 1;
    CartItemAdded(CartItemAdded) => "cart", "item_added", 1;
    CartItemRemoved(CartItemRemoved) => "cart", "item_removed", 1;
    OrderPlaced(OrderPlaced) => "order", "placed", 1;
    OrderCancelled(OrderCancelled) => "order", "cancelled", 1;
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_wire_name() {
        for &event_type in EventType::ALL {
            assert_eq!(EventType::parse(event_type.as_str()), Some(event_type));
            assert_eq!(
                event_type.as_str(),
                format!("{}.{}", event_type.domain(), event_type.action())
            );
        }
        assert_eq!(EventType::ALL.len(), 11);
        for &event_type in EventType::ALL {
            assert_eq!(
                event_type.schema_version_str(),
                event_type.schema_version().to_string()
            );
        }
    }

    #[test]
    fn unknown_names_are_not_guessed() {
        assert_eq!(EventType::parse("order.refunded"), None);
        assert_eq!(EventType::parse("ORDER.PLACED"), None);
    }

    #[test]
    fn event_type_follows_the_payload() {
        let event = Event::new(
            EventMeta::new("order", Some(UserId::new_v7())),
            OrderCancelled {
                order_id: OrderId::new_v7(),
                lines: vec![],
            },
        );
        assert_eq!(event.event_type(), EventType::OrderCancelled);
        assert_eq!(event.schema_version(), 1);
    }
}
