//! The typed payload of every event type, one struct each.
//!
//! These structs are the wire layout of schema version 1 of their event type:
//! bincode is positional, so a field added, removed or reordered here changes
//! the bytes on the wire. The golden fixtures in `shared/tests/fixtures` fail
//! when that happens; read "Schema evolution" in `events/mod.rs` first.

use super::ids::{OrderId, ProductId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A product category, as shown in the catalogue ("books", "garden").
///
/// Lower-case ASCII letters, digits, `-` and `_`, 1 to 64 characters: it is
/// used in metric labels and keys, so it must stay small and printable.
/// Serialized as a plain string; deserializing checks the rule too (strictly:
/// no trimming), so a category from an event, a reply or a snapshot is as
/// valid as one from [`Category::parse`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Category(String);

/// Why a piece of text is not a category.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("category must be 1-64 characters of a-z, 0-9, '-' or '_', got {0:?}")]
pub struct InvalidCategory(pub String);

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Category {
    /// Text typed by people (forms, query strings): trimmed, then checked.
    pub fn parse(text: &str) -> Result<Self, InvalidCategory> {
        let text = text.trim();
        if is_slug(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidCategory(text.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Machine-written text (serde): checked as it is. The wire bytes are a
/// plain string's, as before this check existed.
impl TryFrom<String> for Category {
    type Error = InvalidCategory;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if is_slug(&text) {
            Ok(Self(text))
        } else {
            Err(InvalidCategory(text.chars().take(64).collect()))
        }
    }
}

impl From<Category> for String {
    fn from(category: Category) -> Self {
        category.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Category({:?})", self.0)
    }
}

/// `user.registered`: a new account exists. The user id is in the envelope.
/// The e-mail address stays in the user service: events carry no more personal
/// data than consumers need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub name: String,
}

/// `user.logged_in`: a session token was issued. The user id is in the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLoggedIn {
    /// When the issued token expires, Unix milliseconds.
    pub session_expires_at_ms: i64,
}

/// `product.created`: a product entered the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCreated {
    pub product_id: ProductId,
    pub name: String,
    pub category: Category,
    pub price_cents: i64,
    pub stock: i64,
}

/// `product.updated`: price or stock changed; both carry their new values so a
/// consumer never needs the previous event to know the current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductUpdated {
    pub product_id: ProductId,
    pub price_cents: i64,
    pub stock: i64,
}

/// `product.viewed`: a signed-in shopper opened a product page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductViewed {
    pub product_id: ProductId,
    pub category: Category,
}

/// `product.searched`: a catalogue search with its text and filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSearched {
    pub query: String,
    pub category: Option<Category>,
    pub result_count: u32,
}

/// `product.rated`: a shopper gave 1 to 5 stars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRated {
    pub product_id: ProductId,
    pub category: Category,
    /// 1 to 5; decoding refuses anything else (a malformed event, dead-lettered),
    /// so a consumer never averages a 9-star rating. Same bytes as a plain u8.
    #[serde(deserialize_with = "stars_in_range")]
    pub stars: u8,
}

/// Lowest and highest stars of a rating.
pub const STARS: std::ops::RangeInclusive<u8> = 1..=5;

fn stars_in_range<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let stars = u8::deserialize(deserializer)?;
    if STARS.contains(&stars) {
        Ok(stars)
    } else {
        Err(serde::de::Error::custom(format_args!(
            "stars must be 1 to 5, got {stars}"
        )))
    }
}

/// `cart.item_added`: quantity added to the cart, at the price seen then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartItemAdded {
    pub product_id: ProductId,
    pub category: Category,
    pub quantity: u32,
    pub unit_price_cents: i64,
}

/// `cart.item_removed`: a product left the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartItemRemoved {
    pub product_id: ProductId,
    pub category: Category,
}

/// One line of a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub category: Category,
    pub quantity: u32,
    pub unit_price_cents: i64,
}

/// `order.placed`: a checkout succeeded and stock is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: OrderId,
    pub lines: Vec<OrderLine>,
    pub total_cents: i64,
}

/// `order.cancelled`: an order was cancelled and its stock released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub lines: Vec<OrderLine>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn category_accepts_slugs_and_trims() {
        assert_eq!(
            Category::parse(" home-garden ").unwrap().as_str(),
            "home-garden"
        );
    }

    #[test]
    fn category_rejects_empty_upper_case_and_long_text() {
        assert!(Category::parse("").is_err());
        assert!(Category::parse("Books").is_err());
        assert!(Category::parse(&"a".repeat(65)).is_err());
        assert!(Category::parse("a b").is_err());
    }

    /// The rule, stated on its own: 1 to 64 of a-z, 0-9, '-', '_'.
    fn is_slug(text: &str) -> bool {
        (1..=64).contains(&text.len())
            && text
                .chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
    }

    fn any_category_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ \t]?[a-z0-9_-]{0,8}[ \t]?",
            "[a-z0-9_-]{62,66}",
            "[a-zA-Z0-9_ .\u{e9}\n-]{0,8}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn category_accepts_exactly_trimmed_slugs(text in any_category_text()) {
            let parsed = Category::parse(&text);
            prop_assert_eq!(parsed.is_ok(), is_slug(text.trim()), "{:?}", text);
            if let Ok(category) = parsed {
                prop_assert_eq!(category.as_str(), text.trim());
            }
        }

        /// What arrives in JSON or bincode is held to the same rule, without
        /// the trimming that is a courtesy to people typing.
        #[test]
        fn serde_accepts_exactly_slugs(text in any_category_text()) {
            let from_json = serde_json::from_value::<Category>(serde_json::json!(text));
            prop_assert_eq!(from_json.is_ok(), is_slug(&text), "{:?}", text);
            let bytes = crate::codec::encode_value(&text).unwrap();
            let from_bincode = crate::codec::decode_value::<Category>(&bytes);
            prop_assert_eq!(from_bincode.is_ok(), is_slug(&text), "{:?}", text);
        }

        #[test]
        fn categories_round_trip_through_serde(text in "[a-z0-9_-]{1,64}") {
            let category = Category::parse(&text).unwrap();
            let json = serde_json::to_value(&category).unwrap();
            prop_assert_eq!(&json, &serde_json::json!(text));
            prop_assert_eq!(serde_json::from_value::<Category>(json).unwrap(), category.clone());
            let bytes = crate::codec::encode_value(&category).unwrap();
            prop_assert_eq!(crate::codec::decode_value::<Category>(&bytes).unwrap(), category);
        }
    }
}
