//! Request-reply contracts between services: JSON over NATS, served with
//! async-nats's service API (so `nats micro ls` lists them), and a client that
//! carries the caller's trace context in the request headers.
//!
//! The product service answers these; the order service calls them. Neither
//! depends on the other's crate: this module is the contract.

mod server;

pub use server::{RpcFailure, RpcHandler, RpcServer, RpcService, answer_json};

use crate::events::{Category, OrderId, ProductId};
use crate::nats::headers::TraceHeaders;
use async_nats::HeaderMap;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::time::Duration;
use tracing::Instrument;

/// The product service's name in the NATS service API.
pub const PRODUCT_SERVICE: &str = "product";
/// Price and stock of products.
pub const PRODUCT_LOOKUP: &str = "shopmesh.rpc.product.lookup";
/// Reserve stock for an order, all lines or none. Idempotent per order id.
pub const PRODUCT_RESERVE: &str = "shopmesh.rpc.product.reserve";
/// Give an order's reserved stock back. Idempotent per order id.
pub const PRODUCT_RELEASE: &str = "shopmesh.rpc.product.release";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRequest {
    pub product_ids: Vec<ProductId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub product_id: ProductId,
    pub name: String,
    pub category: Category,
    pub price_cents: i64,
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResponse {
    pub products: Vec<ProductInfo>,
    pub missing: Vec<ProductId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveLine {
    pub product_id: ProductId,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub order_id: OrderId,
    pub lines: Vec<ReserveLine>,
}

/// A reserved line, at the price in force when it was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedLine {
    pub product_id: ProductId,
    pub name: String,
    pub category: Category,
    pub quantity: u32,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortLine {
    pub product_id: ProductId,
    pub requested: u32,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReserveResponse {
    /// Every line is reserved (or already was, for this order id).
    Reserved { lines: Vec<ReservedLine> },
    /// Nothing was reserved: these lines lack stock.
    Short { short: Vec<ShortLine> },
    /// Nothing was reserved: these products do not exist.
    Unknown { missing: Vec<ProductId> },
    /// Nothing was reserved: the order was released already (a request that
    /// arrived after its checkout was given up).
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub order_id: OrderId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseResponse {
    /// False when nothing was reserved for the order (already released, or never).
    pub released: bool,
}

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("no service answers {subject}")]
    NoResponders { subject: String },
    #[error("{subject} did not answer within {timeout:?}")]
    TimedOut { subject: String, timeout: Duration },
    #[error("{subject} failed: {code} {message}")]
    Service {
        subject: String,
        code: String,
        message: String,
    },
    #[error("{subject} answered something unreadable: {reason}")]
    Decode { subject: String, reason: String },
    #[error("request to {subject} failed: {reason}")]
    Transport { subject: String, reason: String },
}

impl RpcError {
    /// The other side is down or unreachable (as opposed to a refusal).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RpcError::NoResponders { .. } | RpcError::TimedOut { .. } | RpcError::Transport { .. }
        )
    }
}

/// Sends `request` as JSON to `subject` with the current trace context and
/// decodes the JSON reply, under a CLIENT span whose context the request
/// carries (the server's span becomes its child).
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &'static str,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, RpcError> {
    let span = tracing::info_span!(
        "rpc call",
        otel.name = subject,
        otel.kind = "client",
        rpc.system = "nats",
        rpc.method = subject.rsplit('.').next().unwrap_or(subject),
        messaging.system = "nats",
        messaging.destination.name = subject,
        otel.status_code = tracing::field::Empty,
    );
    let result = request_reply(client, subject, request, timeout)
        .instrument(span.clone())
        .await;
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    result
}

async fn request_reply<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &'static str,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, RpcError> {
    let payload = serde_json::to_vec(request).expect("contract types serialize");
    let mut headers = HeaderMap::new();
    TraceHeaders::current().insert_into(&mut headers);
    let sent = client.request_with_headers(subject, headers, payload.into());
    let reply = match tokio::time::timeout(timeout, sent).await {
        Err(_) => {
            return Err(RpcError::TimedOut {
                subject: subject.into(),
                timeout,
            });
        }
        Ok(Err(error)) => {
            return Err(match error.kind() {
                async_nats::RequestErrorKind::NoResponders => RpcError::NoResponders {
                    subject: subject.into(),
                },
                async_nats::RequestErrorKind::TimedOut => RpcError::TimedOut {
                    subject: subject.into(),
                    timeout,
                },
                _ => RpcError::Transport {
                    subject: subject.into(),
                    reason: error.to_string(),
                },
            });
        }
        Ok(Ok(reply)) => reply,
    };
    if let Some(headers) = &reply.headers
        && let Some(code) = headers.get(async_nats::service::NATS_SERVICE_ERROR_CODE)
    {
        let message = headers
            .get(async_nats::service::NATS_SERVICE_ERROR)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        return Err(RpcError::Service {
            subject: subject.into(),
            code: code.as_str().to_owned(),
            message,
        });
    }
    serde_json::from_slice(&reply.payload).map_err(|e| RpcError::Decode {
        subject: subject.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_outcomes_are_tagged() {
        let short = ReserveResponse::Short {
            short: vec![ShortLine {
                product_id: ProductId::new_v7(),
                requested: 3,
                available: 1,
            }],
        };
        let json = serde_json::to_value(&short).unwrap();
        assert_eq!(json["outcome"], "short");
        assert_eq!(
            serde_json::from_value::<ReserveResponse>(json).unwrap(),
            short
        );
    }
}
