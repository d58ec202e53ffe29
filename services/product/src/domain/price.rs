//! A price in integer cents.

use super::Invalid;

/// 0 to 100 000 000 cents (one million in the currency unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceCents(i64);

impl PriceCents {
    pub const MAX: i64 = 100_000_000;

    pub fn parse(cents: i64) -> Result<Self, Invalid> {
        if (0..=Self::MAX).contains(&cents) {
            Ok(Self(cents))
        } else {
            Err(Invalid(format!(
                "price_cents must be from 0 to {}, got {cents}",
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds() {
        assert!(PriceCents::parse(0).is_ok());
        assert!(PriceCents::parse(PriceCents::MAX).is_ok());
        assert!(PriceCents::parse(-1).is_err());
        assert!(PriceCents::parse(PriceCents::MAX + 1).is_err());
    }

    proptest! {
        #[test]
        fn accepts_exactly_0_to_max(cents in prop_oneof![
            any::<i64>(),
            -2i64..=2,
            PriceCents::MAX - 2..=PriceCents::MAX + 2,
        ]) {
            let parsed = PriceCents::parse(cents);
            prop_assert_eq!(parsed.is_ok(), (0..=100_000_000).contains(&cents));
            if let Ok(price) = parsed {
                prop_assert_eq!(price.get(), cents);
            }
        }
    }
}
