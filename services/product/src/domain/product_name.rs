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
}
