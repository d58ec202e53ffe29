//! The wire codec: events to bytes and back. Every bincode call in shopmesh is
//! in this module.
//!
//! bincode is pinned at 2.0.1: 3.0.0 is an empty crate and no maintained
//! release exists (RUSTSEC-2025-0141, see `deny.toml`). Keeping every call here
//! means a switch of encoding touches one file, and the encoding's name travels
//! in a header ([`ENCODING`]) so producers and consumers can migrate one by one.
//!
//! The body is `bincode(EventMeta, Payload)` for the payload struct of the event
//! type named in the header; there is no enum tag in the body, so adding an event
//! type never shifts the bytes of the others.

use crate::events::*;
use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The value of the `Shopmesh-Encoding` header this codec writes and reads.
pub const ENCODING: &str = "bincode2";

/// Largest body the decoder accepts; it also caps the allocation a hostile
/// length prefix can ask for.
pub const MAX_BODY_BYTES: usize = 1 << 20;

type WireConfig = Configuration<LittleEndian, Varint, Limit<MAX_BODY_BYTES>>;

const fn wire_config() -> WireConfig {
    bincode::config::standard().with_limit::<MAX_BODY_BYTES>()
}

/// What the headers say about a body, before it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireHeaders<'a> {
    pub encoding: &'a str,
    pub event_type: &'a str,
    pub schema_version: &'a str,
}

/// Why an event could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {event_type} event: {source}")]
pub struct EncodeError {
    pub event_type: EventType,
    #[source]
    pub source: bincode::error::EncodeError,
}

/// Why a message could not be decoded into an [`Event`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown encoding {found:?} (this build reads {ENCODING:?})")]
    UnknownEncoding { found: String },
    #[error("unknown event type {found:?}")]
    UnknownEventType { found: String },
    #[error("schema version {found:?} of {event_type} is not a number")]
    InvalidSchemaVersion {
        event_type: EventType,
        found: String,
    },
    #[error(
        "{event_type} schema version {found} is not supported (this build reads 1..={supported})"
    )]
    UnsupportedSchemaVersion {
        event_type: EventType,
        found: u16,
        supported: u16,
    },
    #[error("body of {event_type} v{schema_version} is malformed: {source}")]
    Malformed {
        event_type: EventType,
        schema_version: u16,
        #[source]
        source: bincode::error::DecodeError,
    },
    #[error("body of {event_type} has {extra} unexpected trailing bytes")]
    TrailingBytes { event_type: EventType, extra: usize },
}

impl DecodeError {
    /// True when the message is well formed but written by a newer producer
    /// (a type or version this build does not know): skip it and count it, do
    /// not dead-letter it.
    pub fn is_from_newer_producer(&self) -> bool {
        match self {
            DecodeError::UnknownEventType { .. } => true,
            DecodeError::UnsupportedSchemaVersion {
                found, supported, ..
            } => found > supported,
            _ => false,
        }
    }

    /// A short, stable label for metrics and dead-letter headers.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnknownEncoding { .. } => "unknown_encoding",
            DecodeError::UnknownEventType { .. } => "unknown_event_type",
            DecodeError::InvalidSchemaVersion { .. } => "invalid_schema_version",
            DecodeError::UnsupportedSchemaVersion { .. } => "unsupported_schema_version",
            DecodeError::Malformed { .. } => "malformed_body",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
        }
    }
}

fn encode_parts<P: Serialize>(
    meta: &EventMeta,
    payload: &P,
    event_type: EventType,
) -> Result<Bytes, EncodeError> {
    bincode::serde::encode_to_vec((meta, payload), wire_config())
        .map(Bytes::from)
        .map_err(|source| EncodeError { event_type, source })
}

/// Encodes the body of `event`. Its headers come from [`Event::event_type`],
/// [`Event::schema_version`] and [`ENCODING`].
pub fn encode(event: &Event) -> Result<Bytes, EncodeError> {
    let meta = &event.meta;
    let event_type = event.event_type();
    match &event.payload {
        EventPayload::UserRegistered(p) => encode_parts(meta, p, event_type),
        EventPayload::UserLoggedIn(p) => encode_parts(meta, p, event_type),
        EventPayload::ProductCreated(p) => encode_parts(meta, p, event_type),
        EventPayload::ProductUpdated(p) => encode_parts(meta, p, event_type),
        EventPayload::ProductViewed(p) => encode_parts(meta, p, event_type),
        EventPayload::ProductSearched(p) => encode_parts(meta, p, event_type),
        EventPayload::ProductRated(p) => encode_parts(meta, p, event_type),
        EventPayload::CartItemAdded(p) => encode_parts(meta, p, event_type),
        EventPayload::CartItemRemoved(p) => encode_parts(meta, p, event_type),
        EventPayload::OrderPlaced(p) => encode_parts(meta, p, event_type),
        EventPayload::OrderCancelled(p) => encode_parts(meta, p, event_type),
    }
}

fn decode_parts<P>(
    body: &[u8],
    event_type: EventType,
    schema_version: u16,
) -> Result<Event, DecodeError>
where
    P: DeserializeOwned + Into<EventPayload>,
{
    let ((meta, payload), read): ((EventMeta, P), usize) =
        bincode::serde::decode_from_slice(body, wire_config()).map_err(|source| {
            DecodeError::Malformed {
                event_type,
                schema_version,
                source,
            }
        })?;
    if read != body.len() {
        return Err(DecodeError::TrailingBytes {
            event_type,
            extra: body.len() - read,
        });
    }
    Ok(Event::new(meta, payload))
}

/// Decodes a body described by its headers. Never panics, whatever the input.
pub fn decode(headers: WireHeaders<'_>, body: &[u8]) -> Result<Event, DecodeError> {
    if headers.encoding != ENCODING {
        return Err(DecodeError::UnknownEncoding {
            found: headers.encoding.chars().take(64).collect(),
        });
    }
    let event_type =
        EventType::parse(headers.event_type).ok_or_else(|| DecodeError::UnknownEventType {
            found: headers.event_type.chars().take(64).collect(),
        })?;
    let version: u16 =
        headers
            .schema_version
            .parse()
            .map_err(|_| DecodeError::InvalidSchemaVersion {
                event_type,
                found: headers.schema_version.chars().take(16).collect(),
            })?;
    let supported = event_type.schema_version();
    if version == 0 || version > supported {
        return Err(DecodeError::UnsupportedSchemaVersion {
            event_type,
            found: version,
            supported,
        });
    }
    // Only version 1 exists so far. When version 2 of a type appears, its older
    // decoder stays here and upcasts (see "Schema evolution" in `events`).
    match event_type {
        EventType::UserRegistered => decode_parts::<UserRegistered>(body, event_type, version),
        EventType::UserLoggedIn => decode_parts::<UserLoggedIn>(body, event_type, version),
        EventType::ProductCreated => decode_parts::<ProductCreated>(body, event_type, version),
        EventType::ProductUpdated => decode_parts::<ProductUpdated>(body, event_type, version),
        EventType::ProductViewed => decode_parts::<ProductViewed>(body, event_type, version),
        EventType::ProductSearched => decode_parts::<ProductSearched>(body, event_type, version),
        EventType::ProductRated => decode_parts::<ProductRated>(body, event_type, version),
        EventType::CartItemAdded => decode_parts::<CartItemAdded>(body, event_type, version),
        EventType::CartItemRemoved => decode_parts::<CartItemRemoved>(body, event_type, version),
        EventType::OrderPlaced => decode_parts::<OrderPlaced>(body, event_type, version),
        EventType::OrderCancelled => decode_parts::<OrderCancelled>(body, event_type, version),
    }
}

/// Why a stored value (a snapshot, say) could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("cannot encode value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("cannot decode value: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("value has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

/// Encodes any serde value with the wire configuration but no size limit:
/// for state a service stores itself (snapshots), not for messages.
pub fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, ValueError> {
    Ok(bincode::serde::encode_to_vec(
        value,
        bincode::config::standard(),
    )?)
}

/// Decodes what [`encode_value`] wrote.
pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValueError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
    if read != bytes.len() {
        return Err(ValueError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_headers_for(event_type: EventType, schema_version: &str) -> WireHeaders<'_> {
        WireHeaders {
            encoding: ENCODING,
            event_type: event_type.as_str(),
            schema_version,
        }
    }

    fn viewed() -> Event {
        Event::new(
            EventMeta::new("product", Some(UserId::new_v7())),
            ProductViewed {
                product_id: ProductId::new_v7(),
                category: Category::parse("books").unwrap(),
            },
        )
    }

    #[test]
    fn round_trip() {
        let event = viewed();
        let body = encode(&event).unwrap();
        let back = decode(wire_headers_for(event.event_type(), "1"), &body).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn refuses_unknown_encoding_with_a_typed_error() {
        let event = viewed();
        let body = encode(&event).unwrap();
        let headers = WireHeaders {
            encoding: "json",
            event_type: "product.viewed",
            schema_version: "1",
        };
        let err = decode(headers, &body).unwrap_err();
        assert!(matches!(err, DecodeError::UnknownEncoding { .. }), "{err}");
        assert!(!err.is_from_newer_producer());
    }

    #[test]
    fn newer_versions_and_types_are_from_a_newer_producer() {
        let body = encode(&viewed()).unwrap();
        let newer = decode(wire_headers_for(EventType::ProductViewed, "2"), &body).unwrap_err();
        assert!(matches!(
            newer,
            DecodeError::UnsupportedSchemaVersion { found: 2, .. }
        ));
        assert!(newer.is_from_newer_producer());

        let unknown = WireHeaders {
            encoding: ENCODING,
            event_type: "product.wishlisted",
            schema_version: "1",
        };
        let err = decode(unknown, &body).unwrap_err();
        assert!(err.is_from_newer_producer());

        let zero = decode(wire_headers_for(EventType::ProductViewed, "0"), &body).unwrap_err();
        assert!(!zero.is_from_newer_producer());
    }

    #[test]
    fn a_body_decoded_as_the_wrong_type_is_malformed_not_a_panic() {
        let body = encode(&viewed()).unwrap();
        let err = decode(wire_headers_for(EventType::OrderPlaced, "1"), &body).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Malformed { .. } | DecodeError::TrailingBytes { .. }
        ));
    }

    #[test]
    fn values_round_trip() {
        let value = (42u64, vec!["a".to_string()], Some(-1i64));
        let bytes = encode_value(&value).unwrap();
        assert_eq!(
            decode_value::<(u64, Vec<String>, Option<i64>)>(&bytes).unwrap(),
            value
        );
        assert!(decode_value::<(u64, Vec<String>, Option<i64>)>(&bytes[..2]).is_err());
    }

    #[test]
    fn a_rating_outside_one_to_five_stars_is_malformed() {
        let rated = |stars| {
            Event::new(
                EventMeta::new("product", Some(UserId::new_v7())),
                ProductRated {
                    product_id: ProductId::new_v7(),
                    category: Category::parse("books").unwrap(),
                    stars,
                },
            )
        };
        for stars in [1, 5] {
            let body = encode(&rated(stars)).unwrap();
            assert!(decode(wire_headers_for(EventType::ProductRated, "1"), &body).is_ok());
        }
        for stars in [0, 6, 255] {
            let body = encode(&rated(stars)).unwrap();
            let err = decode(wire_headers_for(EventType::ProductRated, "1"), &body).unwrap_err();
            assert!(matches!(err, DecodeError::Malformed { .. }), "{err}");
            assert!(err.to_string().contains("stars"), "{err}");
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let event = viewed();
        let mut body = encode(&event).unwrap().to_vec();
        body.push(0);
        let err = decode(wire_headers_for(event.event_type(), "1"), &body).unwrap_err();
        assert!(matches!(err, DecodeError::TrailingBytes { extra: 1, .. }));
    }
}
