//! `UserName`: the display name an account was registered with.

use std::fmt;

pub const MAX_NAME_CHARS: usize = 100;

/// 1 to 100 characters after trimming, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct UserName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUserName {
    #[error("the name must not be empty")]
    Empty,
    #[error("the name must be at most {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("the name must not contain control characters")]
    ControlCharacter,
}

impl UserName {
    pub fn parse(text: &str) -> Result<Self, InvalidUserName> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(InvalidUserName::Empty);
        }
        if trimmed.chars().count() > MAX_NAME_CHARS {
            return Err(InvalidUserName::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidUserName::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(UserName::parse("  Ann Lee ").unwrap().as_str(), "Ann Lee");
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(UserName::parse(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert_eq!(
            UserName::parse(&"é".repeat(MAX_NAME_CHARS + 1)),
            Err(InvalidUserName::TooLong)
        );
    }

    #[test]
    fn empty_and_control_characters_are_refused() {
        assert_eq!(UserName::parse(" \t "), Err(InvalidUserName::Empty));
        assert_eq!(
            UserName::parse("Ann\nLee"),
            Err(InvalidUserName::ControlCharacter)
        );
        assert_eq!(
            UserName::parse("Ann\u{0}"),
            Err(InvalidUserName::ControlCharacter)
        );
    }

    proptest! {
        #[test]
        fn accepts_exactly_1_to_100_characters_without_control_ones(text in prop_oneof![
            "[ \t]{0,3}[a-zA-Z\u{e9}' -]{0,12}[ \t]{0,3}",
            "[a-z\u{e9}]{95,105}",
            " ?[a-z]{1,5}[\\x00-\\x1f\\x7f\\u{85}][a-z]{0,5}",
            any::<String>(),
        ]) {
            let trimmed = text.trim();
            let mut broken = Vec::new();
            if trimmed.is_empty() {
                broken.push(InvalidUserName::Empty);
            }
            if trimmed.chars().count() > MAX_NAME_CHARS {
                broken.push(InvalidUserName::TooLong);
            }
            if trimmed.chars().any(char::is_control) {
                broken.push(InvalidUserName::ControlCharacter);
            }
            match UserName::parse(&text) {
                Ok(name) => {
                    prop_assert!(broken.is_empty());
                    prop_assert_eq!(name.as_str(), trimmed);
                    prop_assert_eq!(UserName::parse(name.as_str()), Ok(name.clone()));
                }
                Err(error) => prop_assert!(broken.contains(&error), "{:?}: {:?}", text, error),
            }
        }
    }
}
