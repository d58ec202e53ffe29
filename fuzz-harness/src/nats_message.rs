//! The `event_message` target's input format: a NATS message as it travels
//! (`HMSG`'s header block, then the payload), so that seeds are readable and
//! the fuzzer mutates headers and body together:
//!
//! ```text
//! NATS/1.0\r\n
//! Shopmesh-Event-Type: product.viewed\r\n
//! ...\r\n
//! \r\n
//! <payload bytes>
//! ```
//!
//! Input that does not start with `NATS/1.0` is a message without headers
//! (`MSG`), all payload.

use async_nats::HeaderMap;
use async_nats::header::{HeaderName, HeaderValue};
use std::str::FromStr;

const VERSION_LINE: &str = "NATS/1.0";
const END_OF_HEADERS: &[u8] = b"\r\n\r\n";

/// One message: its headers, if it has any, and its payload.
pub struct NatsMessage<'a> {
    pub headers: Option<HeaderMap>,
    pub payload: &'a [u8],
}

impl<'a> NatsMessage<'a> {
    /// Splits and reads the header block the way async-nats 0.51 reads it
    /// (`connection.rs`, `HMSG`): `None` for a block the client itself
    /// refuses, since such a message never reaches the consumer runner.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        if !data.starts_with(VERSION_LINE.as_bytes()) {
            return Some(Self {
                headers: None,
                payload: data,
            });
        }
        let end = data
            .windows(END_OF_HEADERS.len())
            .position(|w| w == END_OF_HEADERS)?;
        let block = std::str::from_utf8(&data[..end]).ok()?;
        let payload = &data[end + END_OF_HEADERS.len()..];
        let mut lines = block.lines().peekable();
        lines.next()?.strip_prefix(VERSION_LINE)?;
        let mut headers = HeaderMap::new();
        while let Some(line) = lines.next() {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':')?;
            let name = HeaderName::from_str(name).ok()?;
            // A value may continue on lines that start with whitespace.
            let mut value = value.trim_start().to_owned();
            while let Some(more) = lines.next_if(|s| s.starts_with(char::is_whitespace)) {
                value.push_str(more);
            }
            value.truncate(value.trim_end().len());
            // async-nats asserts here (a lone CR inside a line); that is the
            // client's failure, before our code runs, so it is not fuzzed.
            let value = HeaderValue::from_str(&value).ok()?;
            headers.append(name, value);
        }
        Some(Self {
            headers: Some(headers),
            payload,
        })
    }

    /// The message in this format, headers sorted by name so that the same
    /// message always gives the same bytes.
    pub fn to_bytes(headers: Option<&HeaderMap>, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        if let Some(headers) = headers {
            let mut lines: Vec<String> = headers
                .iter()
                .flat_map(|(name, values)| {
                    values
                        .iter()
                        .map(move |value| format!("{name}: {}\r\n", value.as_str()))
                })
                .collect();
            lines.sort();
            bytes.extend_from_slice(VERSION_LINE.as_bytes());
            bytes.extend_from_slice(b"\r\n");
            for line in lines {
                bytes.extend_from_slice(line.as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(payload);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_payload_round_trip() {
        let mut headers = HeaderMap::new();
        headers.insert("Shopmesh-Event-Type", "product.viewed");
        headers.insert("traceparent", "00-abc");
        let bytes = NatsMessage::to_bytes(Some(&headers), b"\x01\x02\r\n\r\n");
        let message = NatsMessage::parse(&bytes).unwrap();
        let parsed = message.headers.unwrap();
        assert_eq!(
            parsed.get("Shopmesh-Event-Type").unwrap().as_str(),
            "product.viewed"
        );
        assert_eq!(parsed.get("traceparent").unwrap().as_str(), "00-abc");
        assert_eq!(message.payload, b"\x01\x02\r\n\r\n");
    }

    #[test]
    fn without_a_version_line_it_is_all_payload() {
        let message = NatsMessage::parse(b"abc").unwrap();
        assert!(message.headers.is_none());
        assert_eq!(message.payload, b"abc");
    }

    #[test]
    fn blocks_the_client_refuses_are_none() {
        assert!(NatsMessage::parse(b"NATS/1.0\r\nno colon\r\n\r\n").is_none());
        assert!(NatsMessage::parse(b"NATS/1.0\r\nA: b\r\n").is_none());
        assert!(NatsMessage::parse(b"NATS/1.0\r\nA b: c\r\n\r\n").is_none());
    }
}
