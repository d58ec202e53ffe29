//! The product service's outside input: `POST /products`, `PATCH
//! /products/{id}`, `POST /products/{id}/ratings`, the `GET /products` query
//! string, and the stock requests it answers over NATS.

use crate::Outcome;
use crate::invariants::{
    assert_field_problem, assert_rpc_refusal, assert_valid_category, json_body, subject_and_payload,
};
use futures::executor::block_on;
use shopmesh_product::domain::{PriceCents, ProductName, SearchText, Stars, Stock};
use shopmesh_product::inventory::{self, MAX_ITEMS};
use shopmesh_product::routes::{CreateProduct, PatchProduct, RateProduct, list_query};
use shopmesh_shared::rpc::{
    LookupRequest, PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE, ReleaseRequest,
    ReserveRequest, answer_json,
};

/// `POST /products {name, category, price_cents, stock}`.
pub fn product_create(data: &[u8]) -> Outcome {
    let Some(request) = json_body::<CreateProduct>(data) else {
        return Outcome::Refused;
    };
    let validated = request.validate();
    match &validated {
        Ok(new) => {
            assert_eq!(
                ProductName::parse(new.name.as_str()).as_ref(),
                Ok(&new.name)
            );
            assert_valid_category(&new.category);
            assert_eq!(
                PriceCents::parse(new.price_cents.get()),
                Ok(new.price_cents)
            );
            assert_eq!(Stock::parse(new.stock.get()), Ok(new.stock));
        }
        Err(error) => assert_field_problem(
            &error.problem(),
            &["name", "category", "price_cents", "stock"],
        ),
    }
    Outcome::of(&validated)
}

/// `PATCH /products/{id} {price_cents?, stock?}`.
pub fn product_update(data: &[u8]) -> Outcome {
    let Some(request) = json_body::<PatchProduct>(data) else {
        return Outcome::Refused;
    };
    let validated = request.validate();
    match &validated {
        Ok(change) => {
            assert!(
                change.price_cents().is_some() || change.stock().is_some(),
                "a change that changes nothing was accepted"
            );
            if let Some(price) = change.price_cents() {
                assert_eq!(PriceCents::parse(price.get()), Ok(price));
            }
            if let Some(stock) = change.stock() {
                assert_eq!(Stock::parse(stock.get()), Ok(stock));
            }
        }
        Err(error) => assert_field_problem(&error.problem(), &["price_cents", "stock"]),
    }
    Outcome::of(&validated)
}

/// `POST /products/{id}/ratings {stars}`.
pub fn product_rate(data: &[u8]) -> Outcome {
    let Some(request) = json_body::<RateProduct>(data) else {
        return Outcome::Refused;
    };
    let validated = request.validate();
    match &validated {
        Ok(stars) => {
            assert!((1..=5).contains(&stars.get()));
            assert_eq!(Stars::parse(i64::from(stars.get())), Ok(*stars));
        }
        Err(error) => assert_field_problem(&error.problem(), &["stars"]),
    }
    Outcome::of(&validated)
}

/// `GET /products?category=&q=&page=&per_page=`: the raw query string
/// (actix hands the handler text, so input that is not UTF-8 is skipped).
pub fn product_list_query(data: &[u8]) -> Outcome {
    let Ok(query_string) = std::str::from_utf8(data) else {
        return Outcome::Refused;
    };
    let parsed = list_query(query_string);
    match &parsed {
        Ok(query) => {
            let (page, per_page) = (query.page.get(), query.per_page.get());
            assert!(page >= 1 && (1..=100).contains(&per_page));
            assert_eq!(
                query.offset(),
                (i64::from(page) - 1) * i64::from(per_page),
                "the offset does not follow page and size"
            );
            if let Some(category) = &query.category {
                assert_valid_category(category);
            }
            if let Some(text) = &query.q {
                assert_eq!(SearchText::parse(text.as_str()), Ok(Some(text.clone())));
                let pattern = text.like_pattern();
                assert!(pattern.len() >= 2 && pattern.starts_with('%') && pattern.ends_with('%'));
            }
        }
        Err(error) => {
            assert_field_problem(&error.problem(), &["category", "q", "page", "per_page"])
        }
    }
    Outcome::of(&parsed)
}

/// `shopmesh.rpc.product.{lookup,reserve,release}` (input: the subject, a
/// newline, the payload), decoded by the shared RPC server and checked as
/// the inventory checks it before any transaction.
pub fn product_stock_rpc(data: &[u8]) -> Outcome {
    let Some((subject, payload)) = subject_and_payload(data) else {
        return Outcome::Refused;
    };
    let answer = match subject {
        PRODUCT_LOOKUP => block_on(answer_json(payload, |request: LookupRequest| async move {
            let ids = inventory::lookup_ids(&request)?;
            assert!(ids.len() <= MAX_ITEMS && ids.len() <= request.product_ids.len());
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), ids.len(), "a lookup asks for an id twice");
            Ok(ids)
        }))
        .map(drop),
        PRODUCT_RESERVE => block_on(answer_json(payload, |request: ReserveRequest| async move {
            let merged = inventory::merge_lines(&request.lines)?;
            let asked: u64 = request.lines.iter().map(|l| u64::from(l.quantity)).sum();
            let merged_total: u64 = merged.values().map(|&q| u64::from(q)).sum();
            assert_eq!(asked, merged_total, "merging lines changed the quantity");
            assert!(merged.values().all(|&q| q >= 1) && merged.len() <= MAX_ITEMS);
            Ok(merged.len())
        }))
        .map(drop),
        PRODUCT_RELEASE => block_on(answer_json(payload, |request: ReleaseRequest| async move {
            Ok(request.order_id)
        }))
        .map(drop),
        _ => return Outcome::Refused,
    };
    assert_rpc_refusal(&answer);
    Outcome::of(&answer)
}
