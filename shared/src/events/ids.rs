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
    use proptest::prelude::*;

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

    /// The text forms `Uuid::parse_str` accepts: 32 hex digits, or 8-4-4-4-12
    /// hyphenated ones, bare, braced or after a `urn:uuid:` prefix (in any
    /// case); surrounding blanks are trimmed.
    fn is_uuid_text(text: &str) -> bool {
        let text = text.trim();
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        let hyphenated = |s: &str| {
            let groups: Vec<&str> = s.split('-').collect();
            groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]) && groups.iter().all(|g| hex(g))
        };
        let simple = text.len() == 32 && hex(text);
        let braced = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .is_some_and(hyphenated);
        let urn = text
            .get(..9)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:uuid:"))
            && hyphenated(&text[9..]);
        simple || hyphenated(text) || braced || urn
    }

    fn any_id_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u128>().prop_map(|n| Uuid::from_u128(n).hyphenated().to_string()),
            any::<u128>().prop_map(|n| Uuid::from_u128(n).simple().to_string().to_uppercase()),
            any::<u128>().prop_map(|n| Uuid::from_u128(n).braced().to_string()),
            any::<u128>().prop_map(|n| Uuid::from_u128(n).urn().to_string().to_uppercase()),
            "[ ]?[0-9a-fA-F-]{30,38}[ ]?",
            "[0-9a-g]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{11,13}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_uuid_texts(text in any_id_text()) {
            prop_assert_eq!(ProductId::parse(&text).is_ok(), is_uuid_text(&text), "{:?}", text);
        }

        #[test]
        fn ids_round_trip_through_text_and_serde(n in any::<u128>()) {
            let id = OrderId::from_uuid(Uuid::from_u128(n));
            prop_assert_eq!(OrderId::parse(&id.to_string()), Ok(id));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(&json, &format!("\"{id}\""));
            prop_assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), id);
            let bytes = crate::codec::encode_value(&id).unwrap();
            prop_assert_eq!(crate::codec::decode_value::<OrderId>(&bytes).unwrap(), id);
        }
    }
}
