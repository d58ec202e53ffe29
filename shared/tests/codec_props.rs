//! Property tests of the codec: every event round-trips, and no input, however
//! broken, makes the decoder panic.

use proptest::prelude::*;
use shopmesh_shared::codec::{self, ENCODING, WireHeaders};
use shopmesh_shared::events::*;
use uuid::Uuid;

fn any_uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn any_category() -> impl Strategy<Value = Category> {
    "[a-z0-9_-]{1,64}".prop_map(|s| Category::parse(&s).unwrap())
}

fn any_line() -> impl Strategy<Value = OrderLine> {
    (any_uuid(), any_category(), any::<u32>(), any::<i64>()).prop_map(|(p, c, q, price)| {
        OrderLine {
            product_id: ProductId::from_uuid(p),
            category: c,
            quantity: q,
            unit_price_cents: price,
        }
    })
}

fn any_meta() -> impl Strategy<Value = EventMeta> {
    (
        any_uuid(),
        any::<i64>(),
        ".{0,24}",
        proptest::option::of(any_uuid()),
    )
        .prop_map(|(id, at, producer, user)| EventMeta {
            event_id: EventId::from_uuid(id),
            occurred_at: Timestamp::from_millis(at),
            producer,
            user_id: user.map(UserId::from_uuid),
        })
}

fn any_payload() -> impl Strategy<Value = EventPayload> {
    let product = || any_uuid().prop_map(ProductId::from_uuid);
    prop_oneof![
        ".{0,40}".prop_map(|name| UserRegistered { name }.into()),
        any::<i64>().prop_map(|t| UserLoggedIn {
            session_expires_at_ms: t
        }
        .into()),
        (
            product(),
            ".{0,40}",
            any_category(),
            any::<i64>(),
            any::<i64>()
        )
            .prop_map(
                |(product_id, name, category, price_cents, stock)| ProductCreated {
                    product_id,
                    name,
                    category,
                    price_cents,
                    stock
                }
                .into()
            ),
        (product(), any::<i64>(), any::<i64>()).prop_map(|(product_id, price_cents, stock)| {
            ProductUpdated {
                product_id,
                price_cents,
                stock,
            }
            .into()
        }),
        (product(), any_category()).prop_map(|(product_id, category)| ProductViewed {
            product_id,
            category
        }
        .into()),
        (
            ".{0,40}",
            proptest::option::of(any_category()),
            any::<u32>()
        )
            .prop_map(|(query, category, result_count)| ProductSearched {
                query,
                category,
                result_count
            }
            .into()),
        (product(), any_category(), 1u8..=5).prop_map(|(product_id, category, stars)| {
            ProductRated {
                product_id,
                category,
                stars,
            }
            .into()
        }),
        (product(), any_category(), any::<u32>(), any::<i64>()).prop_map(
            |(product_id, category, quantity, unit_price_cents)| CartItemAdded {
                product_id,
                category,
                quantity,
                unit_price_cents
            }
            .into()
        ),
        (product(), any_category()).prop_map(|(product_id, category)| CartItemRemoved {
            product_id,
            category
        }
        .into()),
        (
            any_uuid(),
            proptest::collection::vec(any_line(), 0..8),
            any::<i64>()
        )
            .prop_map(|(order, lines, total_cents)| OrderPlaced {
                order_id: OrderId::from_uuid(order),
                lines,
                total_cents
            }
            .into()),
        (any_uuid(), proptest::collection::vec(any_line(), 0..8)).prop_map(|(order, lines)| {
            OrderCancelled {
                order_id: OrderId::from_uuid(order),
                lines,
            }
            .into()
        }),
    ]
}

fn any_event() -> impl Strategy<Value = Event> {
    (any_meta(), any_payload()).prop_map(|(meta, payload)| Event { meta, payload })
}

fn headers(event_type: EventType, version: &str) -> WireHeaders<'_> {
    WireHeaders {
        encoding: ENCODING,
        event_type: event_type.as_str(),
        schema_version: version,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_event_round_trips(event in any_event()) {
        let body = codec::encode(&event).unwrap();
        let version = event.schema_version().to_string();
        let back = codec::decode(headers(event.event_type(), &version), &body).unwrap();
        prop_assert_eq!(back, event);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        type_index in 0..EventType::ALL.len(),
    ) {
        let _ = codec::decode(headers(EventType::ALL[type_index], "1"), &body);
    }

    #[test]
    fn truncated_or_corrupted_bodies_are_errors_not_panics(
        event in any_event(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let body = codec::encode(&event).unwrap().to_vec();
        let version = event.schema_version().to_string();
        let truncated = &body[..cut.index(body.len())];
        prop_assert!(codec::decode(headers(event.event_type(), &version), truncated).is_err());
        let mut corrupted = body.clone();
        let at = flip.index(corrupted.len());
        corrupted[at] ^= 0xff;
        let _ = codec::decode(headers(event.event_type(), &version), &corrupted);
    }

    #[test]
    fn arbitrary_headers_never_panic(
        encoding in ".{0,12}",
        event_type in ".{0,24}",
        version in ".{0,6}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let wire = WireHeaders { encoding: &encoding, event_type: &event_type, schema_version: &version };
        let _ = codec::decode(wire, &body);
    }
}
