//! The order service's outside input: `POST /cart/items` (checkout, `POST
//! /orders`, has no body), and the product service's replies it decodes.

use crate::Outcome;
use crate::invariants::{
    assert_bad_request, assert_valid_category, json_body, subject_and_payload,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shopmesh_order::domain::Quantity;
use shopmesh_order::routes::AddItem;
use shopmesh_shared::events::ProductId;
use shopmesh_shared::rpc::{
    LookupResponse, PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE, ReleaseResponse,
    ReserveResponse,
};
use std::fmt::Debug;

/// `POST /cart/items {product_id, quantity}`.
pub fn order_cart_add(data: &[u8]) -> Outcome {
    let Some(request) = json_body::<AddItem>(data) else {
        return Outcome::Refused;
    };
    let validated = request.validate();
    match &validated {
        Ok((product_id, quantity)) => {
            assert_eq!(ProductId::parse(&product_id.to_string()), Ok(*product_id));
            assert!((1..=Quantity::MAX).contains(&quantity.get()));
            assert_eq!(Quantity::parse(i64::from(quantity.get())), Ok(*quantity));
        }
        Err(error) => assert_bad_request(error),
    }
    Outcome::of(&validated)
}

/// The replies to `shopmesh.rpc.product.{lookup,reserve,release}` (input:
/// the request's subject, a newline, the reply), decoded as
/// `shopmesh_shared::rpc::call` decodes them (`serde_json::from_slice`): the
/// order service trusts what they say about products and stock.
pub fn order_rpc_replies(data: &[u8]) -> Outcome {
    let Some((subject, payload)) = subject_and_payload(data) else {
        return Outcome::Refused;
    };
    let decoded = match subject {
        PRODUCT_LOOKUP => reply::<LookupResponse>(payload).map(|lookup| {
            for product in &lookup.products {
                assert_valid_category(&product.category);
            }
        }),
        PRODUCT_RESERVE => reply::<ReserveResponse>(payload).map(|reserve| {
            if let ReserveResponse::Reserved { lines } = &reserve {
                for line in lines {
                    assert_valid_category(&line.category);
                }
            }
        }),
        PRODUCT_RELEASE => reply::<ReleaseResponse>(payload).map(drop),
        _ => None,
    };
    if decoded.is_some() {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

/// The decoded reply, after checking it survives a JSON round trip.
fn reply<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let text = serde_json::to_vec(&value).expect("a decoded reply encodes");
    let again: T = serde_json::from_slice(&text).expect("a re-encoded reply decodes");
    assert_eq!(again, value, "a reply changed through a JSON round trip");
    Some(value)
}
