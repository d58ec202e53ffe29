//! `event_message`: a JetStream message, headers and payload, through what
//! the consumer runner does before any handler sees it: trace-context
//! extraction and `decode_message`. What decodes must be a valid event that
//! encodes and decodes back the same; what is refused must be refusable (the
//! runner writes the error into a dead letter's headers).

use crate::Outcome;
use crate::invariants::assert_valid_category;
use crate::nats_message::NatsMessage;
use async_nats::HeaderMap;
use async_nats::header::HeaderValue;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use shopmesh_shared::codec::{self, ENCODING, WireHeaders};
use shopmesh_shared::events::{Category, Event, EventPayload, json};
use shopmesh_shared::nats::headers::{
    EVENT_TYPE, MessageDecodeError, TRACEPARENT, decode_message, extract_context,
    format_traceparent,
};
use std::str::FromStr;
use std::sync::Once;

pub fn event_message(data: &[u8]) -> Outcome {
    let Some(message) = NatsMessage::parse(data) else {
        return Outcome::Refused;
    };
    let headers = message.headers.as_ref();
    if let Some(headers) = headers {
        check_trace_context(headers);
    }
    match decode_message(headers, message.payload) {
        Ok(event) => {
            check_event(&event, headers.expect("events decode only with headers"));
            Outcome::Accepted
        }
        Err(error) => {
            check_refusal(&error);
            Outcome::Refused
        }
    }
}

/// What `telemetry::init` installs; the global default is a no-op, which
/// would leave the traceparent parser unfuzzed.
fn install_propagator() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    });
}

/// A parent read from the headers, written out again, reads back the same.
fn check_trace_context(headers: &HeaderMap) {
    install_propagator();
    let context = extract_context(headers);
    let span = context.span();
    let parent = span.span_context();
    if !parent.is_valid() {
        return;
    }
    let mut again = HeaderMap::new();
    again.insert(TRACEPARENT, format_traceparent(parent).as_str());
    let reread = extract_context(&again);
    let reread = reread.span();
    let reread = reread.span_context();
    assert_eq!(
        (reread.trace_id(), reread.span_id(), reread.trace_flags()),
        (parent.trace_id(), parent.span_id(), parent.trace_flags()),
        "a traceparent does not survive being written out again"
    );
}

fn check_event(event: &Event, headers: &HeaderMap) {
    let named = headers.get(EVENT_TYPE).map(|v| v.as_str());
    assert_eq!(
        named,
        Some(event.event_type().as_str()),
        "decoded as another type than the header names"
    );
    for category in categories(&event.payload) {
        assert_valid_category(category);
    }
    let body = codec::encode(event).expect("a decoded event encodes");
    let wire = WireHeaders {
        encoding: ENCODING,
        event_type: event.event_type().as_str(),
        schema_version: event.event_type().schema_version_str(),
    };
    let again = codec::decode(wire, &body).expect("a re-encoded event decodes");
    assert_eq!(&again, event, "an event changed through encode and decode");
    // What `shopmesh tail` prints for every message on the bus.
    let shown = json::to_json(event);
    assert_eq!(shown["type"], event.event_type().as_str());
}

fn check_refusal(error: &MessageDecodeError) {
    let reason = error.reason();
    assert!(!reason.is_empty());
    if error.is_from_newer_producer() {
        assert!(
            matches!(reason, "unknown_event_type" | "unsupported_schema_version"),
            "{reason} counted as from a newer producer"
        );
    }
    // The consumer runner dead-letters with this text, cut to 512
    // characters, as a header value: a CR or LF in it would panic there.
    let detail: String = error.to_string().chars().take(512).collect();
    assert!(
        HeaderValue::from_str(&detail).is_ok(),
        "a decode error cannot be a header value: {detail:?}"
    );
}

/// Every category an event carries.
fn categories(payload: &EventPayload) -> Vec<&Category> {
    match payload {
        EventPayload::ProductCreated(p) => vec![&p.category],
        EventPayload::ProductViewed(p) => vec![&p.category],
        EventPayload::ProductSearched(p) => p.category.iter().collect(),
        EventPayload::ProductRated(p) => vec![&p.category],
        EventPayload::CartItemAdded(p) => vec![&p.category],
        EventPayload::CartItemRemoved(p) => vec![&p.category],
        EventPayload::OrderPlaced(p) => p.lines.iter().map(|l| &l.category).collect(),
        EventPayload::OrderCancelled(p) => p.lines.iter().map(|l| &l.category).collect(),
        EventPayload::UserRegistered(_)
        | EventPayload::UserLoggedIn(_)
        | EventPayload::ProductUpdated(_) => Vec::new(),
    }
}
