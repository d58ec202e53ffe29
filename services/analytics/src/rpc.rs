//! The NATS request-reply face (async-nats service API, service "analytics",
//! JSON, subjects `shopmesh.rpc.analytics.<name>`).
//!
//! Each instance owns only some partitions, so a single answer would be
//! partial. Every instance therefore subscribes with its OWN queue group
//! (`analytics-<index>`): a request reaches every instance once, each replies
//! with its partial answer tagged with its index and the instance count, and
//! [`scatter`] collects one reply per instance and the caller merges them
//! with the same functions the REST handlers use (`gather`).

use crate::gather::{Neighbour, Partitions};
use crate::recommend::Recommendation;
use crate::state::{FunnelFigures, ProductFigures, ScoredProduct, UserProfile};
use crate::window::WindowKind;
use bytes::Bytes;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{Category, ProductId, UserId};
use shopmesh_shared::nats::headers::TraceHeaders;
use shopmesh_shared::rpc::{RpcFailure, RpcHandler, RpcServer, RpcService, answer_json};
use std::collections::BTreeMap;
use std::time::Duration;

pub const SERVICE: &str = "analytics";
pub const PREFIX: &str = "shopmesh.rpc.analytics";
pub const PROFILE: &str = "shopmesh.rpc.analytics.profile";
pub const PRODUCT: &str = "shopmesh.rpc.analytics.product";
pub const TRENDING: &str = "shopmesh.rpc.analytics.trending";
pub const FUNNEL: &str = "shopmesh.rpc.analytics.funnel";
pub const NEIGHBOURS: &str = "shopmesh.rpc.analytics.neighbours";
pub const RECOMMENDATIONS: &str = "shopmesh.rpc.analytics.recommendations";
pub const SIMILAR: &str = "shopmesh.rpc.analytics.similar";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileRequest {
    pub user_id: UserId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductRequest {
    pub product_id: ProductId,
}

/// Every product with activity is returned (no top-k): partial top-k lists
/// would not merge exactly. The caller keeps its k after merging.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrendingRequest {
    pub window: WindowKind,
    pub category: Option<Category>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunnelRequest {}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NeighboursRequest {
    pub product_id: ProductId,
}

/// Recommendations are ranked by the instance that answers, from the
/// partitions it owns: complete when one instance owns them all (the
/// default); with several, each reply ranks from its own share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecommendationsRequest {
    pub user_id: UserId,
    #[serde(default = "default_k")]
    pub k: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimilarRequest {
    pub product_id: ProductId,
    #[serde(default = "default_k")]
    pub k: usize,
}

fn default_k() -> usize {
    10
}

/// `k` as the REST routes accept it.
pub fn checked_k(k: usize) -> Result<usize, crate::error::AnalyticsError> {
    if (1..=100).contains(&k) {
        Ok(k)
    } else {
        Err(crate::error::AnalyticsError::invalid(
            "k",
            "k must be a whole number from 1 to 100",
        ))
    }
}

/// One instance's answer for the partitions it owns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partial<T> {
    pub instance_index: u16,
    pub instance_count: u16,
    pub partitions: Vec<u16>,
    pub answer: T,
}

pub type ProfileReply = Partial<Option<UserProfile>>;
pub type ProductReply = Partial<Option<ProductFigures>>;
pub type TrendingReply = Partial<Vec<ScoredProduct>>;
pub type FunnelReply = Partial<FunnelFigures>;
pub type NeighboursReply = Partial<Vec<Neighbour>>;
pub type RecommendationsReply = Partial<Vec<Recommendation>>;

/// Every subject an analytics instance answers.
pub const SUBJECTS: [&str; 7] = [
    PROFILE,
    PRODUCT,
    TRENDING,
    FUNNEL,
    NEIGHBOURS,
    RECOMMENDATIONS,
    SIMILAR,
];

/// What an instance needs to answer: its partitions and who it is.
#[derive(Clone)]
struct Context {
    partitions: Partitions,
    instance_index: u16,
    instance_count: u16,
    owned: Vec<u16>,
}

impl Context {
    /// Decodes the request, asks the local partitions, and wraps the answer
    /// as this instance's partial.
    async fn partial<Req, Resp, F, Fut>(&self, payload: &[u8], work: F) -> Result<Bytes, RpcFailure>
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: FnOnce(Req) -> Fut,
        Fut: std::future::Future<Output = Result<Resp, crate::error::AnalyticsError>>,
    {
        answer_json(payload, |request: Req| async move {
            let answer = work(request).await.map_err(|e| match e {
                crate::error::AnalyticsError::InvalidParameter { .. } => {
                    RpcFailure::Invalid(e.to_string())
                }
                other => RpcFailure::Internal(anyhow::Error::new(other)),
            })?;
            Ok(Partial {
                instance_index: self.instance_index,
                instance_count: self.instance_count,
                partitions: self.owned.clone(),
                answer,
            })
        })
        .await
    }
}

impl RpcHandler for Context {
    async fn handle(&self, subject: &'static str, payload: Bytes) -> Result<Bytes, RpcFailure> {
        let p = &self.partitions;
        match subject {
            PROFILE => {
                self.partial(&payload, |r: ProfileRequest| async move {
                    p.user_profile(r.user_id).await
                })
                .await
            }
            PRODUCT => {
                self.partial(&payload, |r: ProductRequest| async move {
                    p.product(r.product_id).await
                })
                .await
            }
            TRENDING => {
                self.partial(&payload, |r: TrendingRequest| async move {
                    p.trending(r.window, r.category, usize::MAX).await
                })
                .await
            }
            FUNNEL => {
                self.partial(&payload, |_: FunnelRequest| async move { p.funnel().await })
                    .await
            }
            NEIGHBOURS => {
                self.partial(&payload, |r: NeighboursRequest| async move {
                    p.neighbours(r.product_id, usize::MAX).await
                })
                .await
            }
            RECOMMENDATIONS => {
                self.partial(&payload, |r: RecommendationsRequest| async move {
                    p.recommendations(r.user_id, checked_k(r.k)?).await
                })
                .await
            }
            SIMILAR => {
                self.partial(&payload, |r: SimilarRequest| async move {
                    p.similar(r.product_id, checked_k(r.k)?).await
                })
                .await
            }
            other => Err(RpcFailure::Invalid(format!("no endpoint {other}"))),
        }
    }
}

/// Registers this instance with the service API under its own queue group
/// (every instance receives every request) and starts answering.
pub async fn start(
    client: &async_nats::Client,
    partitions: Partitions,
    instance_index: u16,
    instance_count: u16,
    owned: Vec<u16>,
) -> anyhow::Result<RpcServer> {
    let context = Context {
        partitions,
        instance_index,
        instance_count,
        owned,
    };
    let spec = RpcService {
        name: SERVICE,
        description: "shopmesh analytics: partial answers per instance, merged by the caller",
        version: env!("CARGO_PKG_VERSION"),
        subjects: &SUBJECTS,
        queue_group: Some(format!("{SERVICE}-{instance_index}")),
        max_inflight: 64,
    };
    RpcServer::start(client, spec, context).await
}

/// Why a scattered request got no complete answer.
#[derive(Debug, thiserror::Error)]
pub enum ScatterError {
    #[error("{subject}: instances {missing:?} did not answer within {timeout:?}")]
    Incomplete {
        subject: &'static str,
        missing: Vec<u16>,
        timeout: Duration,
    },
    #[error("{subject} failed: {code} {message}")]
    Service {
        subject: &'static str,
        code: String,
        message: String,
    },
    #[error("{subject}: {reason}")]
    Transport {
        subject: &'static str,
        reason: String,
    },
}

/// Sends `request` to every instance and returns one partial answer per
/// instance (by index), waiting at most `timeout` for all of them.
pub async fn scatter<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &'static str,
    request: &Req,
    timeout: Duration,
) -> Result<Vec<Partial<Resp>>, ScatterError> {
    let transport = |reason: String| ScatterError::Transport { subject, reason };
    let payload = serde_json::to_vec(request).map_err(|e| transport(e.to_string()))?;
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| transport(e.to_string()))?;
    let mut headers = async_nats::HeaderMap::new();
    TraceHeaders::current().insert_into(&mut headers);
    client
        .publish_with_reply_and_headers(subject, inbox, headers, payload.into())
        .await
        .map_err(|e| transport(e.to_string()))?;
    let mut answers: BTreeMap<u16, Partial<Resp>> = BTreeMap::new();
    let mut expected: Option<u16> = None;
    let deadline = tokio::time::Instant::now() + timeout;
    while expected.is_none_or(|count| answers.len() < usize::from(count)) {
        let message = match tokio::time::timeout_at(deadline, replies.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err(transport("reply subscription closed".into())),
            Err(_) => {
                let count = expected.unwrap_or(1);
                return Err(ScatterError::Incomplete {
                    subject,
                    missing: (0..count).filter(|i| !answers.contains_key(i)).collect(),
                    timeout,
                });
            }
        };
        if let Some(headers) = &message.headers
            && let Some(code) = headers.get(async_nats::service::NATS_SERVICE_ERROR_CODE)
        {
            return Err(ScatterError::Service {
                subject,
                code: code.as_str().to_owned(),
                message: headers
                    .get(async_nats::service::NATS_SERVICE_ERROR)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
        let partial: Partial<Resp> =
            serde_json::from_slice(&message.payload).map_err(|e| transport(e.to_string()))?;
        expected = Some(partial.instance_count);
        answers.insert(partial.instance_index, partial);
    }
    Ok(answers.into_values().collect())
}
