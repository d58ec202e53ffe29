//! A deterministic demo catalogue: the same `(count, seed)` always gives the
//! same products, with plausible names from word lists and prices in each
//! category's usual range. No external data; the only randomness is a small
//! seeded PRNG (splitmix64), so the generator is portable and reproducible.
//!
//! The `shopmesh seed` command posts these to `POST /products`; the struct
//! serializes to exactly that request body.

use serde::Serialize;
use shopmesh_shared::events::Category;
use std::collections::HashSet;

/// One product to create; serializes as the `POST /products` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewProduct {
    pub name: String,
    pub category: Category,
    pub price_cents: i64,
    pub stock: i64,
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to pick
/// words; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth mentioning for
    /// the small ranges used here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One category's vocabulary and price range (whole currency units).
struct Department {
    category: &'static str,
    adjectives: &'static [&'static str],
    nouns: &'static [&'static str],
    /// Brands, series or qualifiers, appended after the noun.
    variants: &'static [&'static str],
    min_units: i64,
    max_units: i64,
}

const DEPARTMENTS: &[Department] = &[
    Department {
        category: "books",
        adjectives: &[
            "Silent",
            "Hidden",
            "Last",
            "Broken",
            "Golden",
            "Forgotten",
            "Crimson",
            "Endless",
            "Northern",
            "Quiet",
            "Wild",
            "Secret",
        ],
        nouns: &[
            "Garden",
            "River",
            "Kingdom",
            "Letters",
            "Harbour",
            "Orchard",
            "Winter",
            "Atlas",
            "Lighthouse",
            "Library",
            "Voyage",
            "Cartographer",
        ],
        variants: &[
            "(Paperback)",
            "(Hardcover)",
            "Second Edition",
            "Illustrated",
            "Collector's Edition",
            "Pocket Edition",
        ],
        min_units: 5,
        max_units: 45,
    },
    Department {
        category: "electronics",
        adjectives: &[
            "Wireless",
            "Portable",
            "Smart",
            "Compact",
            "Noise-Cancelling",
            "Ultra-Slim",
            "4K",
            "Rugged",
            "Bluetooth",
            "USB-C",
        ],
        nouns: &[
            "Headphones",
            "Speaker",
            "Monitor",
            "Keyboard",
            "Webcam",
            "Power Bank",
            "Router",
            "Tablet",
            "E-Reader",
            "Smartwatch",
            "Projector",
            "Charger",
        ],
        variants: &["Pro", "Mini", "Max", "Lite", "X2", "S3", "Plus", "Gen 4"],
        min_units: 15,
        max_units: 1500,
    },
    Department {
        category: "home",
        adjectives: &[
            "Ceramic",
            "Linen",
            "Oak",
            "Bamboo",
            "Cast-Iron",
            "Glass",
            "Woven",
            "Velvet",
            "Marble",
            "Copper",
        ],
        nouns: &[
            "Table Lamp",
            "Throw Blanket",
            "Cutting Board",
            "Dutch Oven",
            "Vase",
            "Cushion",
            "Bookshelf",
            "Mirror",
            "Teapot",
            "Serving Bowl",
            "Wall Clock",
            "Curtains",
        ],
        variants: &[
            "Set of 2",
            "Large",
            "Small",
            "Nordic Line",
            "Classic",
            "Studio",
        ],
        min_units: 10,
        max_units: 400,
    },
    Department {
        category: "garden",
        adjectives: &[
            "Galvanised",
            "Folding",
            "Solar",
            "Stainless",
            "Weatherproof",
            "Terracotta",
            "Ergonomic",
            "Raised",
            "Cedar",
            "Self-Watering",
        ],
        nouns: &[
            "Watering Can",
            "Pruning Shears",
            "Planter",
            "Hose Reel",
            "Bird Feeder",
            "Lantern",
            "Trowel",
            "Compost Bin",
            "Garden Bench",
            "Seed Tray",
            "Rake",
            "Trellis",
        ],
        variants: &[
            "30 cm",
            "45 cm",
            "60 cm",
            "Twin Pack",
            "Heavy Duty",
            "Balcony Size",
        ],
        min_units: 4,
        max_units: 350,
    },
    Department {
        category: "toys",
        adjectives: &[
            "Wooden",
            "Magnetic",
            "Plush",
            "Remote-Control",
            "Musical",
            "Glow-in-the-Dark",
            "Stacking",
            "Giant",
            "Pocket",
            "Rainbow",
        ],
        nouns: &[
            "Building Blocks",
            "Train Set",
            "Teddy Bear",
            "Puzzle",
            "Race Car",
            "Dinosaur",
            "Kite",
            "Dollhouse",
            "Marble Run",
            "Robot",
            "Board Game",
            "Yo-Yo",
        ],
        variants: &[
            "Ages 3+",
            "Ages 6+",
            "Ages 8+",
            "Deluxe",
            "Starter Set",
            "Travel Size",
        ],
        min_units: 5,
        max_units: 150,
    },
    Department {
        category: "sports",
        adjectives: &[
            "Lightweight",
            "Adjustable",
            "Breathable",
            "Carbon",
            "Insulated",
            "Non-Slip",
            "Pro",
            "Trail",
            "Waterproof",
            "Foldable",
        ],
        nouns: &[
            "Yoga Mat",
            "Dumbbells",
            "Running Shoes",
            "Water Bottle",
            "Tennis Racket",
            "Cycling Helmet",
            "Jump Rope",
            "Backpack",
            "Football",
            "Resistance Bands",
            "Trekking Poles",
            "Swim Goggles",
        ],
        variants: &[
            "Size S",
            "Size M",
            "Size L",
            "Team Edition",
            "2 kg",
            "10 kg",
        ],
        min_units: 6,
        max_units: 300,
    },
    Department {
        category: "fashion",
        adjectives: &[
            "Merino",
            "Denim",
            "Leather",
            "Cotton",
            "Cashmere",
            "Linen",
            "Striped",
            "Oversized",
            "Slim-Fit",
            "Vintage",
        ],
        nouns: &[
            "Sweater", "Jacket", "Scarf", "Sneakers", "Belt", "Shirt", "Beanie", "Trousers",
            "Tote Bag", "Dress", "Gloves", "Raincoat",
        ],
        variants: &[
            "Navy", "Charcoal", "Olive", "Sand", "Burgundy", "Ivory", "Black",
        ],
        min_units: 10,
        max_units: 400,
    },
    Department {
        category: "beauty",
        adjectives: &[
            "Hydrating",
            "Organic",
            "Gentle",
            "Revitalising",
            "Fragrance-Free",
            "Vitamin C",
            "Charcoal",
            "Rose",
            "Aloe",
            "Overnight",
        ],
        nouns: &[
            "Face Cream",
            "Serum",
            "Shampoo",
            "Lip Balm",
            "Body Lotion",
            "Cleanser",
            "Face Mask",
            "Hand Cream",
            "Conditioner",
            "Sunscreen",
            "Eye Cream",
            "Bath Salts",
        ],
        variants: &[
            "50 ml",
            "100 ml",
            "200 ml",
            "Travel Size",
            "Refill",
            "Duo Pack",
        ],
        min_units: 3,
        max_units: 90,
    },
    Department {
        category: "grocery",
        adjectives: &[
            "Organic",
            "Roasted",
            "Wholegrain",
            "Smoked",
            "Wildflower",
            "Extra Virgin",
            "Stone-Ground",
            "Sun-Dried",
            "Dark",
            "Spiced",
        ],
        nouns: &[
            "Coffee Beans",
            "Honey",
            "Olive Oil",
            "Pasta",
            "Granola",
            "Green Tea",
            "Chocolate",
            "Almonds",
            "Rice",
            "Tomatoes",
            "Peanut Butter",
            "Maple Syrup",
        ],
        variants: &[
            "250 g",
            "500 g",
            "1 kg",
            "Family Pack",
            "6-Pack",
            "Single Origin",
        ],
        min_units: 1,
        max_units: 40,
    },
    Department {
        category: "music",
        adjectives: &[
            "Acoustic",
            "Electric",
            "Vintage",
            "Studio",
            "Beginner's",
            "Handmade",
            "Digital",
            "Travel",
            "Concert",
            "Student",
        ],
        nouns: &[
            "Guitar",
            "Ukulele",
            "Keyboard",
            "Violin",
            "Drum Pads",
            "Harmonica",
            "Microphone",
            "Vinyl Record",
            "Guitar Strings",
            "Metronome",
            "Headphone Amp",
            "Cajon",
        ],
        variants: &[
            "Natural",
            "Sunburst",
            "Black",
            "Full Size",
            "3/4 Size",
            "Bundle",
        ],
        min_units: 5,
        max_units: 1200,
    },
];

/// The categories the generator uses.
pub fn categories() -> Vec<&'static str> {
    DEPARTMENTS.iter().map(|d| d.category).collect()
}

/// `count` products, deterministic in `seed`, spread over every category,
/// with distinct names.
pub fn catalogue(count: usize, seed: u64) -> Vec<NewProduct> {
    let mut rng = SplitMix64::new(seed);
    let mut names = HashSet::with_capacity(count);
    let mut products = Vec::with_capacity(count);
    for i in 0..count {
        // Round-robin keeps every category represented even in a small catalogue.
        let department = &DEPARTMENTS[i % DEPARTMENTS.len()];
        let base = format!(
            "{} {} {}",
            rng.pick(department.adjectives),
            rng.pick(department.nouns),
            rng.pick(department.variants)
        );
        // Word combinations run out eventually; a series number keeps names
        // distinct (and deterministic) however large the catalogue.
        let mut name = base.clone();
        let mut series = 2;
        while !names.insert(name.clone()) {
            name = format!("{base} No. {series}");
            series += 1;
        }
        products.push(NewProduct {
            name,
            category: Category::parse(department.category).expect("department slugs are valid"),
            price_cents: price(&mut rng, department),
            stock: stock(&mut rng),
        });
    }
    products
}

/// A retail-looking price: whole units in the department's range, ending in
/// .99 (or .49 now and then).
fn price(rng: &mut SplitMix64, department: &Department) -> i64 {
    let span = (department.max_units - department.min_units + 1) as u64;
    let units = department.min_units + rng.below(span) as i64;
    let cents = if rng.below(4) == 0 { 49 } else { 99 };
    (units - 1) * 100 + cents
}

/// Mostly well stocked, some running low, a few sold out.
fn stock(rng: &mut SplitMix64) -> i64 {
    match rng.below(20) {
        0 => 0,
        1..=3 => 1 + rng.below(5) as i64,
        _ => 10 + rng.below(491) as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PriceCents, ProductName, Stock};

    #[test]
    fn the_same_seed_gives_the_same_catalogue() {
        assert_eq!(catalogue(200, 42), catalogue(200, 42));
        assert_ne!(catalogue(200, 42), catalogue(200, 43));
        // A longer catalogue starts with the shorter one.
        assert_eq!(catalogue(500, 7)[..100], catalogue(100, 7)[..]);
    }

    #[test]
    fn products_are_valid_for_the_api() {
        let known = categories();
        assert_eq!(known.len(), 10);
        for product in catalogue(2_000, 1) {
            assert!(
                ProductName::parse(&product.name).is_ok(),
                "{}",
                product.name
            );
            assert!(PriceCents::parse(product.price_cents).is_ok());
            assert!(product.price_cents > 0);
            assert!(Stock::parse(product.stock).is_ok());
            assert!(known.contains(&product.category.as_str()));
        }
    }

    #[test]
    fn prices_stay_in_their_category_range() {
        for product in catalogue(1_000, 9) {
            let department = DEPARTMENTS
                .iter()
                .find(|d| d.category == product.category.as_str())
                .unwrap();
            assert!(product.price_cents >= (department.min_units - 1) * 100);
            assert!(product.price_cents < department.max_units * 100);
        }
    }

    #[test]
    fn names_are_distinct_even_in_a_large_catalogue() {
        let products = catalogue(20_000, 3);
        let names: HashSet<_> = products.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), products.len());
    }

    #[test]
    fn every_category_is_used() {
        let used: HashSet<_> = catalogue(10, 5)
            .into_iter()
            .map(|p| p.category.as_str().to_owned())
            .collect();
        assert_eq!(used.len(), 10);
    }

    #[test]
    fn serializes_as_the_create_body() {
        let json = serde_json::to_value(&catalogue(1, 0)[0]).unwrap();
        for field in ["name", "category", "price_cents", "stock"] {
            assert!(json.get(field).is_some(), "{field}");
        }
        assert!(json["category"].is_string());
    }

    #[test]
    fn splitmix64_matches_its_reference_output() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
    }
}
