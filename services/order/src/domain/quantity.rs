//! How many of a product a cart line holds.

/// 1 to [`Quantity::MAX`] items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u32);

impl Quantity {
    /// More than this in one line is a typo, not a purchase.
    pub const MAX: u32 = 100;

    pub fn parse(value: i64) -> Result<Self, String> {
        if (1..=i64::from(Self::MAX)).contains(&value) {
            Ok(Self(value as u32))
        } else {
            Err(format!("quantity must be between 1 and {}", Self::MAX))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-3).is_err());
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(100).unwrap().get(), 100);
        assert!(Quantity::parse(101).is_err());
    }

    proptest! {
        /// Also values that would wrap into range if narrowed to 32 bits.
        #[test]
        fn accepts_exactly_1_to_max(value in prop_oneof![
            any::<i64>(),
            -1i64..=102,
            (1i64..4).prop_map(|k| k * (1 << 32) + 1),
        ]) {
            let parsed = Quantity::parse(value);
            prop_assert_eq!(parsed.is_ok(), (1..=100).contains(&value));
            if let Ok(quantity) = parsed {
                prop_assert_eq!(i64::from(quantity.get()), value);
            }
        }
    }
}
