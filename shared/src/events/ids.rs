//! Identifier newtypes shared by every event and service.
//!
//! Ids are UUIDs on the wire (16 bytes) and in text (hyphenated, lower case).
//! They have private fields: the only ways in are `new_v7` (fresh, time-ordered)
//! and `parse` (text from outside), so a raw string never reaches the core.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Why a piece of text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be a UUID, got {value:?}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! uuid_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) id.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the text form; the error names what was expected.
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(text.trim()).map(Self).map_err(|_| InvalidId {
                    kind: $kind,
                    value: text.chars().take(64).collect(),
                })
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.as_hyphenated())
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}

uuid_newtype!(
    /// Identifies one event; it is also the JetStream `Nats-Msg-Id`.
    EventId,
    "event id"
);
uuid_newtype!(
    /// Identifies a registered user.
    UserId,
    "user id"
);
uuid_newtype!(
    /// Identifies a product of the catalogue.
    ProductId,
    "product id"
);
uuid_newtype!(
    /// Identifies an order.
    OrderId,
    "order id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_the_text_form() {
        let id = UserId::new_v7();
        assert_eq!(UserId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn parse_names_the_kind_of_id() {
        let err = ProductId::parse("not-a-uuid").unwrap_err();
        assert_eq!(err.kind, "product id");
        assert!(err.to_string().contains("product id must be a UUID"));
    }

    #[test]
    fn new_v7_ids_are_version_7() {
        assert_eq!(EventId::new_v7().as_uuid().get_version_num(), 7);
    }
}
