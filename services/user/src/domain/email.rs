//! `EmailAddress`: the normalised (trimmed, lower-cased) form, which is also
//! the unique key of an account, so `Ann@Example.com` and `ann@example.com`
//! are the same account.

use std::fmt;

/// The longest address accepted (the SMTP path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A plausible e-mail address, normalised.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

/// Why a piece of text is not an accepted e-mail address. The text itself is
/// left out: error messages end up in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    #[error("the e-mail address is empty")]
    Empty,
    #[error("the e-mail address must be at most {MAX_EMAIL_CHARS} characters")]
    TooLong,
    #[error("the e-mail address must not contain spaces or control characters")]
    ForbiddenCharacter,
    #[error("the e-mail address must contain exactly one '@'")]
    NotOneAt,
    #[error("the e-mail address needs a name before the '@'")]
    EmptyLocalPart,
    #[error("the e-mail address needs a domain with a dot after the '@', like example.com")]
    BadDomain,
}

impl EmailAddress {
    /// Trims, lower-cases and checks `text`.
    pub fn parse(text: &str) -> Result<Self, InvalidEmail> {
        let normalised = text.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(InvalidEmail::Empty);
        }
        if normalised.chars().count() > MAX_EMAIL_CHARS {
            return Err(InvalidEmail::TooLong);
        }
        if normalised
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidEmail::ForbiddenCharacter);
        }
        let mut parts = normalised.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidEmail::NotOneAt);
        };
        if local.is_empty() {
            return Err(InvalidEmail::EmptyLocalPart);
        }
        // Every label non-empty and at least two of them: "example.com", not
        // "localhost", ".com", "example." or "a..b".
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|label| label.is_empty()) {
            return Err(InvalidEmail::BadDomain);
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let email = EmailAddress::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ann.lee@example.com");
    }

    #[test]
    fn implausible_addresses_are_refused_with_the_reason() {
        let cases = [
            ("", InvalidEmail::Empty),
            ("   ", InvalidEmail::Empty),
            ("ann", InvalidEmail::NotOneAt),
            ("ann@b@example.com", InvalidEmail::NotOneAt),
            ("@example.com", InvalidEmail::EmptyLocalPart),
            ("ann@localhost", InvalidEmail::BadDomain),
            ("ann@", InvalidEmail::BadDomain),
            ("ann@.com", InvalidEmail::BadDomain),
            ("ann@example.", InvalidEmail::BadDomain),
            ("ann@exa..mple.com", InvalidEmail::BadDomain),
            ("an n@example.com", InvalidEmail::ForbiddenCharacter),
            ("ann\u{7}@example.com", InvalidEmail::ForbiddenCharacter),
        ];
        for (text, expected) in cases {
            assert_eq!(EmailAddress::parse(text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn the_length_limit_is_254_characters() {
        let domain = "@example.com";
        let fits = format!("{}{domain}", "a".repeat(MAX_EMAIL_CHARS - domain.len()));
        assert!(EmailAddress::parse(&fits).is_ok());
        let over = format!("a{fits}");
        assert_eq!(EmailAddress::parse(&over), Err(InvalidEmail::TooLong));
    }

    /// Every rule the text breaks, each stated on its own.
    fn broken_rules(text: &str) -> Vec<InvalidEmail> {
        let normal = text.trim().to_lowercase();
        let mut broken = Vec::new();
        if normal.is_empty() {
            broken.push(InvalidEmail::Empty);
        }
        if normal.chars().count() > MAX_EMAIL_CHARS {
            broken.push(InvalidEmail::TooLong);
        }
        if normal.chars().any(|c| c.is_whitespace() || c.is_control()) {
            broken.push(InvalidEmail::ForbiddenCharacter);
        }
        match normal.split_once('@') {
            Some((local, domain)) if !domain.contains('@') => {
                if local.is_empty() {
                    broken.push(InvalidEmail::EmptyLocalPart);
                }
                if !domain.contains('.')
                    || domain.starts_with('.')
                    || domain.ends_with('.')
                    || domain.contains("..")
                {
                    broken.push(InvalidEmail::BadDomain);
                }
            }
            _ => broken.push(InvalidEmail::NotOneAt),
        }
        broken
    }

    /// Addresses around every rule: case, blanks, '@' and dots, lengths
    /// around the limit, letters of more than one byte, anything.
    fn any_address() -> impl Strategy<Value = String> {
        let labels = proptest::collection::vec("[A-Za-z0-9\u{e9}-]{0,6}", 0..4);
        prop_oneof![
            (" ?", "[A-Za-z0-9._+\u{130}-]{0,12}", labels, "[ \t]?").prop_map(
                |(pre, local, labels, post)| format!("{pre}{local}@{}{post}", labels.join("."))
            ),
            "[a@. \t\\x07]{0,12}",
            (240usize..260).prop_map(|n| format!("{}@example.com", "a".repeat(n - 12))),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn accepts_exactly_what_breaks_no_rule(text in any_address()) {
            let broken = broken_rules(&text);
            match EmailAddress::parse(&text) {
                Ok(email) => {
                    prop_assert!(broken.is_empty(), "accepted {:?} breaking {:?}", text, broken);
                    prop_assert_eq!(email.as_str(), text.trim().to_lowercase());
                    prop_assert_eq!(EmailAddress::parse(email.as_str()), Ok(email.clone()));
                }
                Err(error) => prop_assert!(
                    broken.contains(&error),
                    "{:?} refused as {:?}, but breaks {:?}", text, error, broken
                ),
            }
        }

        #[test]
        fn ascii_case_does_not_make_another_account(text in "[A-Za-z]{1,8}@[A-Za-z]{1,8}\\.[A-Za-z]{2,4}") {
            prop_assert_eq!(
                EmailAddress::parse(&text.to_uppercase()),
                EmailAddress::parse(&text.to_lowercase())
            );
        }
    }
}
