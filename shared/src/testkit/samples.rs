//! Deterministic sample events, one per event type: the golden fixtures, the
//! benchmarks and the backbone tests all start from these.

use crate::events::*;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    // Fixed UUIDv7-shaped ids: version nibble 7, variant bits 10.
    Uuid::from_u128(0x0193_8a6e_7c1e_7000_8000_0000_0000_0000 | n)
}

pub fn sample_user() -> UserId {
    UserId::from_uuid(id(1))
}

fn meta(n: u128, producer: &str, user: Option<UserId>) -> EventMeta {
    EventMeta {
        event_id: EventId::from_uuid(id(0x1000 + n)),
        occurred_at: Timestamp::from_millis(1_764_072_000_000 + n as i64),
        producer: producer.to_owned(),
        user_id: user,
    }
}

fn category(name: &str) -> Category {
    Category::parse(name).expect("sample category is valid")
}

/// One event of every type, in [`EventType::ALL`] order.
pub fn sample_events() -> Vec<Event> {
    let user = Some(sample_user());
    let book = ProductId::from_uuid(id(2));
    let lamp = ProductId::from_uuid(id(3));
    let order = OrderId::from_uuid(id(4));
    let lines = vec![
        OrderLine {
            product_id: book,
            category: category("books"),
            quantity: 2,
            unit_price_cents: 1_999,
        },
        OrderLine {
            product_id: lamp,
            category: category("home"),
            quantity: 1,
            unit_price_cents: 4_500,
        },
    ];
    vec![
        Event::new(
            meta(1, "user", user),
            UserRegistered {
                name: "Ada Lovelace".into(),
            },
        ),
        Event::new(
            meta(2, "user", user),
            UserLoggedIn {
                session_expires_at_ms: 1_764_075_600_000,
            },
        ),
        Event::new(
            meta(3, "product", None),
            ProductCreated {
                product_id: book,
                name: "The Art of Computer Programming".into(),
                category: category("books"),
                price_cents: 1_999,
                stock: 40,
            },
        ),
        Event::new(
            meta(4, "product", None),
            ProductUpdated {
                product_id: book,
                price_cents: 1_799,
                stock: 38,
            },
        ),
        Event::new(meta(5, "product", user), sample_viewed_payload(book)),
        Event::new(
            meta(6, "product", user),
            ProductSearched {
                query: "knuth".into(),
                category: Some(category("books")),
                result_count: 3,
            },
        ),
        Event::new(
            meta(7, "product", user),
            ProductRated {
                product_id: book,
                category: category("books"),
                stars: 5,
            },
        ),
        Event::new(
            meta(8, "order", user),
            CartItemAdded {
                product_id: lamp,
                category: category("home"),
                quantity: 1,
                unit_price_cents: 4_500,
            },
        ),
        Event::new(
            meta(9, "order", user),
            CartItemRemoved {
                product_id: lamp,
                category: category("home"),
            },
        ),
        Event::new(
            meta(10, "order", user),
            OrderPlaced {
                order_id: order,
                lines: lines.clone(),
                total_cents: 8_498,
            },
        ),
        Event::new(
            meta(11, "order", user),
            OrderCancelled {
                order_id: order,
                lines,
            },
        ),
    ]
}

fn sample_viewed_payload(product_id: ProductId) -> ProductViewed {
    ProductViewed {
        product_id,
        category: category("books"),
    }
}

/// A fresh `product.viewed` by `user`: the most common event.
pub fn viewed_by(user: UserId) -> Event {
    Event::new(
        EventMeta::new("product", Some(user)),
        sample_viewed_payload(ProductId::new_v7()),
    )
}
