//! The `event_message` seeds are made here, from the testkit's sample events
//! (one per type) and edge cases derived from them, each with the outcome it
//! stands for. This test fails when the committed files differ from what the
//! code makes now; after an intended change (a new event type, say),
//! rewrite them with
//! `SHOPMESH_WRITE_FUZZ_SEEDS=1 cargo test -p shopmesh-fuzz --test event_seeds`.
//! Generated seeds are named `ok-*` (they decode) or `bad-*` (refused);
//! other files (inputs the fuzzer found, `crash-*`) are left alone.

use async_nats::HeaderMap;
use serde::Serialize;
use shopmesh_fuzz::{NatsMessage, event_message};
use shopmesh_shared::codec;
use shopmesh_shared::events::{Event, EventMeta, EventPayload, ProductId};
use shopmesh_shared::nats::headers::{
    ENCODING, EVENT_TYPE, SCHEMA_VERSION, TRACEPARENT, TraceHeaders, decode_message,
    message_headers,
};
use shopmesh_shared::testkit::sample_events;
use std::path::PathBuf;

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/event_message")
}

/// A fixed trace context, so the seeds are the same on every run.
fn trace() -> TraceHeaders {
    TraceHeaders {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        tracestate: Some("shopmesh=seed".into()),
    }
}

/// The headers the publisher writes for `event`.
fn headers_of(event: &Event) -> HeaderMap {
    message_headers(&event.meta.event_id, event.event_type(), &trace())
}

fn with(mut headers: HeaderMap, name: &str, value: &str) -> HeaderMap {
    headers.insert(name, value);
    headers
}

fn without(headers: &HeaderMap, name: &str) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for (key, values) in headers.iter() {
        if key.to_string() != name {
            for value in values {
                kept.append(key.clone(), value.clone());
            }
        }
    }
    kept
}

/// `product.viewed`'s layout with a plain string where the category goes:
/// what a producer that skips `Category::parse` would send.
#[derive(Serialize)]
struct ViewedWithAnyCategory<'a> {
    product_id: ProductId,
    category: &'a str,
}

/// One seed: its file stem, its bytes, and the outcome it stands for
/// (`None`: decodes; `Some(reason)`: refused with that reason).
struct Seed {
    stem: String,
    bytes: Vec<u8>,
    refused_as: Option<&'static str>,
}

fn seed(
    name: &str,
    headers: Option<&HeaderMap>,
    body: &[u8],
    refused_as: Option<&'static str>,
) -> Seed {
    let prefix = if refused_as.is_some() { "bad" } else { "ok" };
    Seed {
        stem: format!("{prefix}-{name}"),
        bytes: NatsMessage::to_bytes(headers, body),
        refused_as,
    }
}

fn seeds() -> Vec<Seed> {
    let samples = sample_events();
    let mut seeds: Vec<Seed> = samples
        .iter()
        .map(|event| {
            let body = codec::encode(event).unwrap();
            let stem = format!("sample-{}", event.event_type().as_str().replace('.', "-"));
            seed(&stem, Some(&headers_of(event)), &body, None)
        })
        .collect();

    let viewed = samples
        .iter()
        .find(|e| e.event_type().as_str() == "product.viewed")
        .unwrap();
    let headers = headers_of(viewed);
    let body = codec::encode(viewed).unwrap().to_vec();
    let mut trailing = body.clone();
    trailing.push(0);
    let meta: &EventMeta = &viewed.meta;
    let product_id = viewed_product(viewed);
    let bad_category = codec::encode_value(&(
        meta,
        ViewedWithAnyCategory {
            product_id,
            category: "Not A Slug\n",
        },
    ))
    .unwrap();
    // A category length prefix of 2^40 bytes: the size limit must refuse it
    // before anything is allocated.
    let mut huge_length = codec::encode_value(&(meta, product_id)).unwrap();
    huge_length.push(0xfd);
    huge_length.extend_from_slice(&(1u64 << 40).to_le_bytes());

    seeds.extend([
        seed("no-headers", None, &body, Some("missing_header")),
        seed(
            "no-encoding",
            Some(&without(&headers, ENCODING)),
            &body,
            Some("missing_header"),
        ),
        seed(
            "unknown-encoding",
            Some(&with(headers.clone(), ENCODING, "json")),
            &body,
            Some("unknown_encoding"),
        ),
        seed(
            "unknown-type",
            Some(&with(headers.clone(), EVENT_TYPE, "product.wishlisted")),
            &body,
            Some("unknown_event_type"),
        ),
        seed(
            "newer-version",
            Some(&with(headers.clone(), SCHEMA_VERSION, "2")),
            &body,
            Some("unsupported_schema_version"),
        ),
        seed(
            "version-zero",
            Some(&with(headers.clone(), SCHEMA_VERSION, "0")),
            &body,
            Some("unsupported_schema_version"),
        ),
        seed(
            "version-not-a-number",
            Some(&with(headers.clone(), SCHEMA_VERSION, "1.0")),
            &body,
            Some("invalid_schema_version"),
        ),
        seed(
            "other-type-body",
            Some(&with(headers.clone(), EVENT_TYPE, "order.placed")),
            &body,
            Some("malformed_body"),
        ),
        seed(
            "truncated-body",
            Some(&headers),
            &body[..body.len() - 1],
            Some("malformed_body"),
        ),
        seed(
            "trailing-byte",
            Some(&headers),
            &trailing,
            Some("trailing_bytes"),
        ),
        seed(
            "invalid-category",
            Some(&headers),
            &bad_category,
            Some("malformed_body"),
        ),
        seed(
            "huge-length",
            Some(&headers),
            &huge_length,
            Some("malformed_body"),
        ),
        // A broken trace context loses the parent, not the event.
        seed(
            "broken-traceparent",
            Some(&with(headers.clone(), TRACEPARENT, "00-zz-00-01")),
            &body,
            None,
        ),
    ]);
    seeds
}

fn viewed_product(event: &Event) -> ProductId {
    match &event.payload {
        EventPayload::ProductViewed(p) => p.product_id,
        _ => unreachable!("the viewed sample"),
    }
}

fn is_generated(file_name: &str) -> bool {
    file_name.starts_with("ok-") || file_name.starts_with("bad-")
}

#[test]
fn each_seed_has_the_outcome_it_stands_for() {
    for seed in seeds() {
        let message = NatsMessage::parse(&seed.bytes).expect("a seed is a readable message");
        let outcome = decode_message(message.headers.as_ref(), message.payload);
        match (seed.refused_as, outcome) {
            (None, Ok(_)) => {}
            (Some(expected), Err(error)) => assert_eq!(error.reason(), expected, "{}", seed.stem),
            (expected, outcome) => panic!("{}: expected {expected:?}, got {outcome:?}", seed.stem),
        }
        event_message(&seed.bytes);
    }
}

#[test]
fn samples_decode_to_the_testkit_events() {
    for (seed, event) in seeds().iter().zip(sample_events()) {
        let message = NatsMessage::parse(&seed.bytes).unwrap();
        let decoded = decode_message(message.headers.as_ref(), message.payload).unwrap();
        assert_eq!(decoded, event, "{}", seed.stem);
    }
}

#[test]
fn committed_seeds_are_what_this_file_makes() {
    let write = std::env::var_os("SHOPMESH_WRITE_FUZZ_SEEDS").is_some();
    let made = seeds();
    if write {
        std::fs::create_dir_all(seed_dir()).unwrap();
        for entry in std::fs::read_dir(seed_dir()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if is_generated(&name) {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    for seed in &made {
        let path = seed_dir().join(format!("{}.bin", seed.stem));
        if write {
            std::fs::write(&path, &seed.bytes).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate the seeds (see this file's header)",
                path.display()
            )
        });
        assert!(
            committed == seed.bytes,
            "{} differs from what the code makes; regenerate the seeds (see this file's header)",
            path.display()
        );
    }
    // No stale generated seed: each one on disk is one this file makes.
    for entry in std::fs::read_dir(seed_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if is_generated(&name) {
            let stem = name.strip_suffix(".bin").unwrap_or(&name);
            assert!(
                made.iter().any(|s| s.stem == stem),
                "{name} is no longer made here; regenerate the seeds"
            );
        }
    }
}
