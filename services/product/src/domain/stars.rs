//! A shopper's rating.

use super::Invalid;
use shopmesh_shared::events::STARS;

/// 1 to 5 stars: the range `product.rated` events decode with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stars(u8);

impl Stars {
    pub fn parse(stars: i64) -> Result<Self, Invalid> {
        match u8::try_from(stars) {
            Ok(n) if STARS.contains(&n) => Ok(Self(n)),
            _ => Err(Invalid(format!("stars must be from 1 to 5, got {stars}"))),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_to_five() {
        assert_eq!(Stars::parse(1).unwrap().get(), 1);
        assert_eq!(Stars::parse(5).unwrap().get(), 5);
        for bad in [0, 6, -1, 256 + 3] {
            assert!(Stars::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Also values that would wrap into 1-5 if narrowed to a byte.
        #[test]
        fn accepts_exactly_1_to_5(stars in prop_oneof![
            any::<i64>(),
            -1i64..=7,
            (0i64..4).prop_map(|k| 256 * (k + 1) + 3),
        ]) {
            let parsed = Stars::parse(stars);
            prop_assert_eq!(parsed.is_ok(), (1..=5).contains(&stars));
            if let Ok(parsed) = parsed {
                prop_assert_eq!(i64::from(parsed.get()), stars);
            }
        }
    }
}
