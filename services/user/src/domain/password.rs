//! `Password`: a new account's password, checked against the length policy.
//! It is never trimmed (spaces are characters the user chose) and never
//! printed: its `Debug` is redacted so it cannot leak through a log line.

use std::fmt;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A password that meets the policy (8 to 128 characters).
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPassword {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

impl Password {
    pub fn parse(text: String) -> Result<Self, InvalidPassword> {
        let chars = text.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            Err(InvalidPassword::TooShort)
        } else if chars > MAX_PASSWORD_CHARS {
            Err(InvalidPassword::TooLong)
        } else {
            Ok(Self(text))
        }
    }

    /// The plain text, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_policy_is_8_to_128_characters() {
        assert_eq!(
            Password::parse("1234567".into()).unwrap_err(),
            InvalidPassword::TooShort
        );
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("ü".repeat(128)).is_ok());
        assert_eq!(
            Password::parse("x".repeat(129)).unwrap_err(),
            InvalidPassword::TooLong
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    proptest! {
        /// Counted in characters, never trimmed, never changed.
        #[test]
        fn accepts_exactly_8_to_128_characters(text in prop_oneof![
            "[ a-z\u{fc}]{0,10}",
            "[a-z\u{fc}]{125,131}",
            any::<String>(),
        ]) {
            let chars = text.chars().count();
            match Password::parse(text.clone()) {
                Ok(password) => {
                    prop_assert!((MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars));
                    prop_assert_eq!(password.expose(), text.as_str());
                }
                Err(InvalidPassword::TooShort) => prop_assert!(chars < MIN_PASSWORD_CHARS),
                Err(InvalidPassword::TooLong) => prop_assert!(chars > MAX_PASSWORD_CHARS),
            }
        }
    }
}
