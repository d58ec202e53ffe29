//! A product's display name.

use super::Invalid;

/// 1 to 200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Invalid("name must not be empty".into()));
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(Invalid(format!(
                "name must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(Invalid("name must not contain control characters".into()));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_accepts_up_to_200_characters() {
        assert_eq!(ProductName::parse("  Lamp ").unwrap().as_str(), "Lamp");
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert!(ProductName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn refuses_empty_and_control_characters() {
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse("a\nb").is_err());
    }

    /// Text around the rule's edges: blanks, control characters, letters of
    /// more than one byte, lengths around 200.
    fn any_name_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ \t]{0,3}[a-zA-Z\u{e9} ]{0,10}[ \t]{0,3}",
            "[a-z\u{e9}]{195,205}",
            " ?[a-z]{1,5}[\\x00-\\x1f\\x7f\\u{85}][a-z]{0,5}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn accepts_exactly_1_to_200_characters_without_control_ones(text in any_name_text()) {
            let trimmed = text.trim();
            let allowed = !trimmed.is_empty()
                && trimmed.chars().count() <= ProductName::MAX_CHARS
                && !trimmed.chars().any(char::is_control);
            let parsed = ProductName::parse(&text);
            prop_assert_eq!(parsed.is_ok(), allowed);
            if let Ok(name) = parsed {
                prop_assert_eq!(name.as_str(), trimmed);
                prop_assert_eq!(ProductName::parse(name.as_str()), Ok(name.clone()));
            }
        }
    }
}
