//! NATS message headers: their names, how an event's headers are built, and
//! W3C trace-context propagation over them.
//!
//! async-nats has no OpenTelemetry glue that fits opentelemetry 0.33, so the
//! [`HeaderInjector`] here adapts `HeaderMap` to the globally installed
//! propagator (W3C TraceContext, installed by `telemetry`) for writing;
//! reading parses the W3C headers directly ([`remote_parent`]), once per
//! consumed message.

use crate::codec::{self, DecodeError, WireHeaders};
use crate::events::{Event, EventId, EventType};
use async_nats::HeaderMap;
use async_nats::header::HeaderName;
use opentelemetry::propagation::Injector;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// JetStream's de-duplication key; we set it to the event id.
pub const MESSAGE_ID: &str = "Nats-Msg-Id";
/// The event type, `domain.action`.
pub const EVENT_TYPE: &str = "Shopmesh-Event-Type";
/// The schema version of the body, a decimal number.
pub const SCHEMA_VERSION: &str = "Shopmesh-Schema-Version";
/// The body's encoding, `bincode2`.
pub const ENCODING: &str = "Shopmesh-Encoding";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// Dead letters: why, the decoder's message, and where the message came from.
pub const DEAD_LETTER_REASON: &str = "Shopmesh-Dead-Letter-Reason";
pub const DEAD_LETTER_ERROR: &str = "Shopmesh-Dead-Letter-Error";
pub const DEAD_LETTER_SUBJECT: &str = "Shopmesh-Dead-Letter-Subject";
pub const DEAD_LETTER_SEQUENCE: &str = "Shopmesh-Dead-Letter-Stream-Sequence";

/// Writes propagation fields into a `HeaderMap`.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

/// The W3C trace headers one message carries. Kept as text so that an outbox
/// row can store them and a retry can rebuild the message's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceHeaders {
    /// The trace headers for context `cx`, through the global propagator. When
    /// `cx` holds no valid span (telemetry not initialised, or a caller outside
    /// any span), a new sampled root trace is minted so that every event is
    /// still traceable end to end.
    pub fn from_context(cx: &opentelemetry::Context) -> Self {
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            return Self {
                traceparent: new_root_traceparent(),
                tracestate: None,
            };
        }
        let mut carrier = HeaderMap::new();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(cx, &mut HeaderInjector(&mut carrier))
        });
        let get = |name| carrier.get(name).map(|v| v.as_str().to_owned());
        Self {
            // No propagator installed (the global default is a no-op): write
            // the W3C header ourselves rather than publish an untraceable event.
            traceparent: get(TRACEPARENT).unwrap_or_else(|| format_traceparent(&sc)),
            tracestate: get(TRACESTATE),
        }
    }

    /// The trace headers of the current `tracing` span.
    pub fn current() -> Self {
        Self::from_context(&tracing::Span::current().context())
    }

    /// Writes them into `headers`.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT_NAME, self.traceparent.as_str());
        if let Some(tracestate) = &self.tracestate {
            headers.insert(TRACESTATE_NAME, tracestate.as_str());
        }
    }
}

/// The context carried by `headers` (empty when there is none).
pub fn extract_context(headers: &HeaderMap) -> opentelemetry::Context {
    match remote_parent(headers) {
        Some(sc) => opentelemetry::Context::new().with_remote_span_context(sc),
        None => opentelemetry::Context::new(),
    }
}

/// The remote span context in `headers`' W3C `traceparent` and
/// `tracestate`, read by the W3C rules as the TraceContext propagator reads
/// them (a test holds the two equal on valid and invalid headers; fields of
/// the wrong length, which the propagator lets through, are refused here),
/// parsed here because the consumer does it for every message:
/// the global propagator's lock and the extractor's lookups by `&str` name
/// were 3% of the analytics process in a profile.
pub fn remote_parent(headers: &HeaderMap) -> Option<SpanContext> {
    let (trace_id, span_id, flags) = parse_traceparent(headers.get(TRACEPARENT_NAME)?.as_str())?;
    let state = match headers.get(TRACESTATE_NAME) {
        Some(value) => value.as_str().parse().unwrap_or_default(),
        None => TraceState::default(),
    };
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// `version-traceid-spanid-flags`, lowercase hex. Version 00 has exactly
/// these four fields; a later version may append more, read as 00 (W3C);
/// ff is invalid, as are all-zero ids. Flags other than `sampled` are
/// dropped.
fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let lower_hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if !lower_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !(lower_hex(trace, 32) && lower_hex(span, 16) && lower_hex(flags, 2)) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace)
        .ok()
        .filter(|id| *id != TraceId::INVALID)?;
    let span_id = SpanId::from_hex(span)
        .ok()
        .filter(|id| *id != SpanId::INVALID)?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?) & TraceFlags::SAMPLED;
    Some((trace_id, span_id, flags))
}

/// The sampler that decides the roots minted here; `telemetry::init` sets
/// it from `OTEL_TRACES_SAMPLER`. Unset: every root is sampled.
static ROOT_SAMPLER: OnceLock<Sampler> = OnceLock::new();

/// Makes minted roots follow `sampler`, like spans the tracer starts (the
/// first call wins: one sampler per process).
pub fn set_root_sampler(sampler: Sampler) {
    let _ = ROOT_SAMPLER.set(sampler);
}

/// A root `traceparent` with random ids (the SDK's per-thread RNG: a system
/// call per event would cost more than the rest of the headers), sampled as
/// the process's sampler decides, so that consumers' parent-based sampling
/// follows the configured ratio instead of recording every event.
fn new_root_traceparent() -> String {
    root_traceparent(ROOT_SAMPLER.get())
}

fn root_traceparent(sampler: Option<&Sampler>) -> String {
    let ids = RandomIdGenerator::default();
    let trace_id = ids.new_trace_id();
    let sampled = sampler.is_none_or(|sampler| {
        let result =
            sampler.should_sample(None, trace_id, "publish", &SpanKind::Producer, &[], &[]);
        matches!(result.decision, SamplingDecision::RecordAndSample)
    });
    let flags = if sampled { "01" } else { "00" };
    format!("00-{trace_id}-{}-{flags}", ids.new_span_id())
}

/// `00-<trace id>-<span id>-<flags>`, the W3C traceparent text.
pub fn format_traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

// Header names built at compile time: no allocation per message.
const MESSAGE_ID_NAME: HeaderName = HeaderName::from_static(MESSAGE_ID);
const EVENT_TYPE_NAME: HeaderName = HeaderName::from_static(EVENT_TYPE);
const SCHEMA_VERSION_NAME: HeaderName = HeaderName::from_static(SCHEMA_VERSION);
const ENCODING_NAME: HeaderName = HeaderName::from_static(ENCODING);
const TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);
const TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);

/// The headers of an event's message: id, type, version, encoding and trace.
/// On the publish hot path: built once per send, never cloned.
pub fn message_headers(
    event_id: &EventId,
    event_type: EventType,
    trace: &TraceHeaders,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut id = uuid::Uuid::encode_buffer();
    let id = event_id.as_uuid().hyphenated().encode_lower(&mut id);
    headers.insert(MESSAGE_ID_NAME, &*id);
    headers.insert(EVENT_TYPE_NAME, event_type.as_str());
    headers.insert(SCHEMA_VERSION_NAME, event_type.schema_version_str());
    headers.insert(ENCODING_NAME, codec::ENCODING);
    trace.insert_into(&mut headers);
    headers
}

/// The headers of `event`'s message under trace context `cx`.
pub fn event_headers(event: &Event, cx: &opentelemetry::Context) -> HeaderMap {
    message_headers(
        &event.meta.event_id,
        event.event_type(),
        &TraceHeaders::from_context(cx),
    )
}

/// A header that the decoder needs was missing.
#[derive(Debug, thiserror::Error)]
#[error("message has no {0} header")]
pub struct MissingHeader(pub &'static str);

/// Why a message could not become an [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum MessageDecodeError {
    #[error(transparent)]
    MissingHeader(#[from] MissingHeader),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl MessageDecodeError {
    pub fn is_from_newer_producer(&self) -> bool {
        matches!(self, MessageDecodeError::Decode(e) if e.is_from_newer_producer())
    }

    pub fn reason(&self) -> &'static str {
        match self {
            MessageDecodeError::MissingHeader(_) => "missing_header",
            MessageDecodeError::Decode(e) => e.reason(),
        }
    }
}

/// Looked up by a prebuilt name: a `&str` name is parsed and compared on
/// every lookup.
fn required<'a>(
    headers: &'a HeaderMap,
    name: HeaderName,
    text: &'static str,
) -> Result<&'a str, MissingHeader> {
    headers
        .get(name)
        .map(|value| value.as_str())
        .ok_or(MissingHeader(text))
}

/// Decodes a message from its headers and payload. Never panics.
pub fn decode_message(
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<Event, MessageDecodeError> {
    let headers = headers.ok_or(MissingHeader(EVENT_TYPE))?;
    let wire = WireHeaders {
        encoding: required(headers, ENCODING_NAME, ENCODING)?,
        event_type: required(headers, EVENT_TYPE_NAME, EVENT_TYPE)?,
        schema_version: required(headers, SCHEMA_VERSION_NAME, SCHEMA_VERSION)?,
    };
    Ok(codec::decode(wire, payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::*;

    /// The propagator's view of a `HeaderMap`, to compare with.
    struct HeaderExtractor<'a>(&'a HeaderMap);

    impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).map(|value| value.as_str())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(name, _)| name.as_ref()).collect()
        }
    }

    #[test]
    fn remote_parent_reads_headers_as_the_trace_context_propagator_does() {
        use opentelemetry::propagation::TextMapPropagator;
        use opentelemetry_sdk::propagation::TraceContextPropagator;
        let traceparents = [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            // Unknown flags are dropped; only `sampled` is kept.
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff",
            " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 ",
            // A later version may carry more fields.
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            // Invalid: version 00 with five fields, version ff, upper case,
            // all-zero ids, missing fields, not hex.
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319x-b7ad6b7169203331-01",
            "",
        ];
        let tracestates = [
            None,
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
            Some("not a state"),
        ];
        let propagator = TraceContextPropagator::new();
        for traceparent in traceparents {
            for tracestate in tracestates {
                let mut headers = HeaderMap::new();
                headers.insert(TRACEPARENT, traceparent);
                if let Some(tracestate) = tracestate {
                    headers.insert(TRACESTATE, tracestate);
                }
                let expected = propagator
                    .extract(&HeaderExtractor(&headers))
                    .span()
                    .span_context()
                    .clone();
                let expected = expected.is_valid().then_some(expected);
                assert_eq!(
                    remote_parent(&headers),
                    expected,
                    "{traceparent:?} {tracestate:?}"
                );
            }
        }
        assert_eq!(remote_parent(&HeaderMap::new()), None);
    }

    #[test]
    fn remote_parent_refuses_fields_of_the_wrong_length() {
        for traceparent in [
            "00-af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT, traceparent);
            assert_eq!(remote_parent(&headers), None, "{traceparent}");
        }
    }

    #[test]
    fn minted_roots_follow_the_sampler() {
        assert!(root_traceparent(None).ends_with("-01"));
        let never = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.0)));
        let always = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        for _ in 0..50 {
            assert!(root_traceparent(Some(&never)).ends_with("-00"));
            assert!(root_traceparent(Some(&always)).ends_with("-01"));
        }
    }

    fn event() -> Event {
        Event::new(
            EventMeta::new("user", Some(UserId::new_v7())),
            UserLoggedIn {
                session_expires_at_ms: 1,
            },
        )
    }

    #[test]
    fn headers_carry_id_type_version_encoding_and_a_traceparent() {
        let event = event();
        let headers = event_headers(&event, &opentelemetry::Context::new());
        assert_eq!(
            headers.get(MESSAGE_ID).unwrap().as_str(),
            event.meta.event_id.to_string()
        );
        assert_eq!(headers.get(EVENT_TYPE).unwrap().as_str(), "user.logged_in");
        assert_eq!(headers.get(SCHEMA_VERSION).unwrap().as_str(), "1");
        assert_eq!(headers.get(ENCODING).unwrap().as_str(), "bincode2");
        let traceparent = headers.get(TRACEPARENT).unwrap().as_str();
        assert_eq!(traceparent.len(), 55, "{traceparent}");
        assert!(traceparent.starts_with("00-") && traceparent.ends_with("-01"));
    }

    #[test]
    fn a_given_context_is_propagated_unchanged() {
        let sc = SpanContext::new(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
            SpanId::from(0xb7ad6b7169203331_u64),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(sc);
        let headers = event_headers(&event(), &cx);
        assert_eq!(
            headers.get(TRACEPARENT).unwrap().as_str(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
    }

    #[test]
    fn decode_message_reports_the_missing_header() {
        let err = decode_message(Some(&HeaderMap::new()), b"").unwrap_err();
        assert_eq!(err.reason(), "missing_header");
        assert!(err.to_string().contains("Shopmesh-Encoding"), "{err}");
        assert!(decode_message(None, b"").is_err());
    }

    #[test]
    fn decode_message_round_trips() {
        let event = event();
        let headers = event_headers(&event, &opentelemetry::Context::new());
        let body = codec::encode(&event).unwrap();
        assert_eq!(decode_message(Some(&headers), &body).unwrap(), event);
    }
}
