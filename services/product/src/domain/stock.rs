//! Units in stock, as set by an admin.

use super::Invalid;

/// 0 to 1 000 000 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock(i64);

impl Stock {
    pub const MAX: i64 = 1_000_000;

    pub fn parse(units: i64) -> Result<Self, Invalid> {
        if (0..=Self::MAX).contains(&units) {
            Ok(Self(units))
        } else {
            Err(Invalid(format!(
                "stock must be from 0 to {}, got {units}",
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
        assert!(Stock::parse(0).is_ok());
        assert!(Stock::parse(Stock::MAX).is_ok());
        assert!(Stock::parse(-1).is_err());
        assert!(Stock::parse(Stock::MAX + 1).is_err());
    }

    proptest! {
        #[test]
        fn accepts_exactly_0_to_max(units in prop_oneof![
            any::<i64>(),
            -2i64..=2,
            Stock::MAX - 2..=Stock::MAX + 2,
        ]) {
            let parsed = Stock::parse(units);
            prop_assert_eq!(parsed.is_ok(), (0..=1_000_000).contains(&units));
            if let Ok(stock) = parsed {
                prop_assert_eq!(stock.get(), units);
            }
        }
    }
}
