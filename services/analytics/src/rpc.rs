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
use crate::state::{FunnelFigures, ProductFigures, ScoredProduct, UserProfile};
use crate::window::WindowKind;
use async_nats::service::endpoint::Endpoint;
use async_nats::service::{Request, Service, ServiceExt, error::Error as ServiceError};
use bytes::Bytes;
use futures::StreamExt;
use opentelemetry::trace::TraceContextExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{Category, ProductId, UserId};
use shopmesh_shared::nats::headers::{TraceHeaders, extract_context};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const SERVICE: &str = "analytics";
pub const PREFIX: &str = "shopmesh.rpc.analytics";
pub const PROFILE: &str = "shopmesh.rpc.analytics.profile";
pub const PRODUCT: &str = "shopmesh.rpc.analytics.product";
pub const TRENDING: &str = "shopmesh.rpc.analytics.trending";
pub const FUNNEL: &str = "shopmesh.rpc.analytics.funnel";
pub const NEIGHBOURS: &str = "shopmesh.rpc.analytics.neighbours";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Profile,
    Product,
    Trending,
    Funnel,
    Neighbours,
}

impl Operation {
    const ALL: [Operation; 5] = [
        Operation::Profile,
        Operation::Product,
        Operation::Trending,
        Operation::Funnel,
        Operation::Neighbours,
    ];

    const fn name(self) -> &'static str {
        match self {
            Operation::Profile => "profile",
            Operation::Product => "product",
            Operation::Trending => "trending",
            Operation::Funnel => "funnel",
            Operation::Neighbours => "neighbours",
        }
    }
}

/// The registered service and its endpoint tasks.
pub struct RpcServer {
    service: Service,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Clone)]
struct Context {
    partitions: Partitions,
    instance_index: u16,
    instance_count: u16,
    owned: Vec<u16>,
}

impl RpcServer {
    pub async fn start(
        client: &async_nats::Client,
        partitions: Partitions,
        instance_index: u16,
        instance_count: u16,
        owned: Vec<u16>,
    ) -> anyhow::Result<Self> {
        let service = client
            .service_builder()
            .description("shopmesh analytics: partial answers per instance, merged by the caller")
            .queue_group(format!("{SERVICE}-{instance_index}"))
            .start(SERVICE, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the NATS service {SERVICE}: {e}"))?;
        let context = Context {
            partitions,
            instance_index,
            instance_count,
            owned,
        };
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        for operation in Operation::ALL {
            let endpoint = service
                .group(PREFIX)
                .endpoint_builder()
                .name(operation.name())
                .add(operation.name())
                .await
                .map_err(|e| anyhow::anyhow!("cannot add endpoint {}: {e}", operation.name()))?;
            tasks.push(tokio::spawn(serve(
                endpoint,
                operation,
                context.clone(),
                shutdown.clone(),
            )));
        }
        client.flush().await?;
        Ok(Self {
            service,
            shutdown,
            tasks,
        })
    }

    /// Stops taking requests, finishes those in hand, leaves the service API.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = self.service.stop().await;
    }
}

async fn serve(
    mut endpoint: Endpoint,
    operation: Operation,
    context: Context,
    shutdown: CancellationToken,
) {
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            request = endpoint.next(), if inflight.len() < 64 => {
                let Some(request) = request else { break };
                inflight.spawn(handle(operation, request, context.clone()));
            }
        }
    }
    let _ = endpoint.stop().await;
    let drain = async { while inflight.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

async fn handle(operation: Operation, request: Request, context: Context) {
    let span = tracing::info_span!(
        "rpc request",
        otel.name = %format_args!("{PREFIX}.{}", operation.name()),
        otel.kind = "server",
        rpc.system = "nats",
        rpc.service = SERVICE,
        rpc.method = operation.name(),
    );
    if let Some(headers) = &request.message.headers {
        let parent = extract_context(headers);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let payload = request.message.payload.clone();
    let reply = dispatch(operation, &payload, &context)
        .instrument(span.clone())
        .await;
    if let Err(error) = request.respond(reply).await {
        tracing::warn!(parent: &span, %error, "cannot send the rpc reply");
    }
}

async fn dispatch(
    operation: Operation,
    payload: &[u8],
    context: &Context,
) -> Result<Bytes, ServiceError> {
    let p = &context.partitions;
    match operation {
        Operation::Profile => {
            answer(payload, context, |r: ProfileRequest| async move {
                p.user_profile(r.user_id).await
            })
            .await
        }
        Operation::Product => {
            answer(payload, context, |r: ProductRequest| async move {
                p.product(r.product_id).await
            })
            .await
        }
        Operation::Trending => {
            answer(payload, context, |r: TrendingRequest| async move {
                p.trending(r.window, r.category, usize::MAX).await
            })
            .await
        }
        Operation::Funnel => {
            answer(payload, context, |_: FunnelRequest| async move {
                p.funnel().await
            })
            .await
        }
        Operation::Neighbours => {
            answer(payload, context, |r: NeighboursRequest| async move {
                p.neighbours(r.product_id, usize::MAX).await
            })
            .await
        }
    }
}

async fn answer<Req, Resp, F, Fut>(
    payload: &[u8],
    context: &Context,
    work: F,
) -> Result<Bytes, ServiceError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, crate::error::AnalyticsError>>,
{
    let request: Req = serde_json::from_slice(payload).map_err(|e| ServiceError {
        status: format!("malformed request: {e}"),
        code: 400,
    })?;
    let answer = work(request).await.map_err(|e| ServiceError {
        status: e.to_string(),
        code: 503,
    })?;
    let reply = Partial {
        instance_index: context.instance_index,
        instance_count: context.instance_count,
        partitions: context.owned.clone(),
        answer,
    };
    serde_json::to_vec(&reply)
        .map(Bytes::from)
        .map_err(|e| ServiceError {
            status: format!("cannot encode the answer: {e}"),
            code: 500,
        })
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
