//! Serving JSON request-reply endpoints on async-nats's service API, the same
//! way in every service: one task per endpoint, a bounded number of requests
//! in hand, the caller's trace continued, every failure a service-error reply
//! (`Nats-Service-Error` / `-Code`, with HTTP meanings: 400 the caller's
//! fault, 500 ours), and a stop that answers what was already received.

use crate::nats::headers::extract_context;
use async_nats::service::endpoint::Endpoint;
use async_nats::service::{Request, Service, ServiceExt, error::Error as ServiceError};
use bytes::Bytes;
use futures::StreamExt;
use opentelemetry::trace::TraceContextExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How long a stop waits for requests being handled.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcFailure {
    /// The request is the caller's fault (code 400); the text goes back.
    #[error("{0}")]
    Invalid(String),
    /// Ours (code 500); the cause is logged, the caller gets a generic text.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Answers the requests of a service's endpoints.
pub trait RpcHandler: Clone + Send + Sync + 'static {
    /// Answers one request sent to `subject` (one of the served subjects).
    fn handle(
        &self,
        subject: &'static str,
        payload: Bytes,
    ) -> impl Future<Output = Result<Bytes, RpcFailure>> + Send;
}

/// Decodes a JSON request, runs `work`, encodes the JSON answer.
pub async fn answer_json<Req, Resp, F, Fut>(payload: &[u8], work: F) -> Result<Bytes, RpcFailure>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, RpcFailure>>,
{
    let request: Req = serde_json::from_slice(payload)
        .map_err(|e| RpcFailure::Invalid(format!("malformed request: {e}")))?;
    let response = work(request).await?;
    serde_json::to_vec(&response)
        .map(Bytes::from)
        .map_err(|e| RpcFailure::Internal(anyhow::Error::new(e).context("encoding the reply")))
}

/// What a service serves.
pub struct RpcService<'a> {
    /// The service's name in the service API (`nats micro ls`).
    pub name: &'static str,
    pub description: &'a str,
    pub version: &'a str,
    /// Full subjects, each `<group>.<endpoint name>`.
    pub subjects: &'a [&'static str],
    /// A queue group of the service's own (instances that must each receive
    /// every request use distinct groups); `None` for the default.
    pub queue_group: Option<String>,
    /// Requests handled at once, per endpoint.
    pub max_inflight: usize,
}

/// The running service: its endpoint tasks and the way to stop them.
pub struct RpcServer {
    service: Service,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RpcServer {
    /// Registers the service and its endpoints with NATS and starts serving.
    pub async fn start<H: RpcHandler>(
        client: &async_nats::Client,
        spec: RpcService<'_>,
        handler: H,
    ) -> anyhow::Result<Self> {
        let mut builder = client.service_builder().description(spec.description);
        if let Some(group) = &spec.queue_group {
            builder = builder.queue_group(group);
        }
        let service = builder
            .start(spec.name, spec.version)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the NATS service {}: {e}", spec.name))?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        for &subject in spec.subjects {
            // The service API joins group and endpoint name with a dot, so
            // splitting at the last dot gives back exactly `subject`.
            let (prefix, name) = subject
                .rsplit_once('.')
                .ok_or_else(|| anyhow::anyhow!("rpc subject {subject} has no group"))?;
            let endpoint = service
                .group(prefix)
                .endpoint_builder()
                .name(name)
                .add(name)
                .await
                .map_err(|e| anyhow::anyhow!("cannot add endpoint {subject}: {e}"))?;
            tasks.push(tokio::spawn(serve(
                endpoint,
                spec.name,
                subject,
                handler.clone(),
                spec.max_inflight.max(1),
                shutdown.clone(),
            )));
        }
        // Subscriptions reach the server before callers hear we are up.
        client.flush().await?;
        Ok(Self {
            service,
            shutdown,
            tasks,
        })
    }

    /// Stops taking requests, answers those already received, then leaves
    /// the service API.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "an rpc endpoint task failed");
            }
        }
        let _ = self.service.stop().await;
    }
}

async fn serve<H: RpcHandler>(
    mut endpoint: Endpoint,
    service: &'static str,
    subject: &'static str,
    handler: H,
    max_inflight: usize,
    shutdown: CancellationToken,
) {
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = inflight.join_next(), if !inflight.is_empty() => report(done),
            request = endpoint.next(), if inflight.len() < max_inflight => {
                let Some(request) = request else { break };
                inflight.spawn(handle(service, subject, request, handler.clone()));
            }
        }
    }
    // Unsubscribing closes the subscription; what it already holds is still
    // answered rather than left to time out.
    if let Err(error) = endpoint.stop().await {
        tracing::warn!(%error, subject, "cannot unsubscribe");
    }
    let drain = async {
        while let Some(request) = endpoint.next().await {
            inflight.spawn(handle(service, subject, request, handler.clone()));
        }
        while let Some(done) = inflight.join_next().await {
            report(done);
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!(
            subject,
            "rpc requests still running at shutdown were abandoned"
        );
    }
}

fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(%error, "an rpc handler panicked");
    }
}

async fn handle<H: RpcHandler>(
    service: &'static str,
    subject: &'static str,
    request: Request,
    handler: H,
) {
    let method = subject.rsplit('.').next().unwrap_or(subject);
    let span = tracing::info_span!(
        "rpc request",
        otel.name = subject,
        otel.kind = "server",
        rpc.system = "nats",
        messaging.system = "nats",
        rpc.service = service,
        rpc.method = method,
        rpc.error_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    // Continue the caller's trace: what this request writes belongs to it.
    if let Some(headers) = &request.message.headers {
        let parent = extract_context(headers);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let payload = request.message.payload.clone();
    let reply = handler
        .handle(subject, payload)
        .instrument(span.clone())
        .await
        .map_err(|failure| {
            let error = to_service_error(&failure);
            span.record("rpc.error_code", error.code);
            if error.code >= 500 {
                span.record("otel.status_code", "ERROR");
                tracing::error!(parent: &span, error = format!("{failure:#}"), "rpc request failed");
            } else {
                tracing::info!(parent: &span, reason = %failure, "rpc request refused");
            }
            error
        });
    if let Err(error) = request.respond(reply).await {
        tracing::warn!(parent: &span, %error, "cannot send the rpc reply");
    }
}

const INTERNAL: &str = "internal error; it has been logged";

fn to_service_error(failure: &RpcFailure) -> ServiceError {
    let (code, status) = match failure {
        RpcFailure::Invalid(reason) => (400, reason.as_str()),
        RpcFailure::Internal(_) => (500, INTERNAL),
    };
    // A header value: one line, bounded.
    let status: String = status
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(256)
        .collect();
    ServiceError { status, code }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_error_status_is_one_bounded_line() {
        let failure = RpcFailure::Invalid(format!("bad\r\nrequest {}", "x".repeat(500)));
        let error = to_service_error(&failure);
        assert!(!error.status.contains('\n') && !error.status.contains('\r'));
        assert_eq!(error.status.chars().count(), 256);
        assert_eq!(error.code, 400);
        let internal = to_service_error(&RpcFailure::Internal(anyhow::anyhow!("secret detail")));
        assert_eq!((internal.code, internal.status.as_str()), (500, INTERNAL));
    }
}
