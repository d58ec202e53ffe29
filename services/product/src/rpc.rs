//! The NATS request-reply face of the service, on async-nats's service API
//! (so `$SRV.PING.product` / `nats micro ls` find it): JSON in, JSON out, on
//! exactly the subjects of `shopmesh_shared::rpc`. Each endpoint reads its
//! requests in its own task and handles up to `max_inflight` at once; a
//! malformed request gets a service error reply, never a crash.

use crate::inventory::{self, InventoryError};
use crate::state::AppState;
use async_nats::service::endpoint::Endpoint;
use async_nats::service::{Request, Service, ServiceExt, error::Error as ServiceError};
use bytes::Bytes;
use futures::StreamExt;
use opentelemetry::trace::TraceContextExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shopmesh_shared::nats::headers::extract_context;
use shopmesh_shared::rpc::{
    LookupRequest, PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE, PRODUCT_SERVICE,
    ReleaseRequest, ReserveRequest,
};
use std::future::Future;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How long a stop waits for requests being handled.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One endpoint of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Lookup,
    Reserve,
    Release,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::Lookup, Operation::Reserve, Operation::Release];

    /// The full subject callers send to.
    pub const fn subject(self) -> &'static str {
        match self {
            Operation::Lookup => PRODUCT_LOOKUP,
            Operation::Reserve => PRODUCT_RESERVE,
            Operation::Release => PRODUCT_RELEASE,
        }
    }

    /// (group prefix, endpoint name): the service API joins them with a dot,
    /// so splitting the contract's subject at its last dot gives back
    /// exactly that subject.
    fn split(self) -> (&'static str, &'static str) {
        self.subject()
            .rsplit_once('.')
            .expect("rpc subjects have a prefix and a name")
    }
}

/// The running service: its endpoint tasks and the way to stop them.
pub struct RpcServer {
    service: Service,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RpcServer {
    /// Registers the service and its endpoints with NATS and starts serving.
    pub async fn start(
        client: &async_nats::Client,
        state: AppState,
        max_inflight: usize,
    ) -> anyhow::Result<Self> {
        let service = client
            .service_builder()
            .description("shopmesh product catalogue: price lookup, stock reservation and release")
            .start(PRODUCT_SERVICE, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the NATS service {PRODUCT_SERVICE}: {e}"))?;
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        for operation in Operation::ALL {
            let (prefix, name) = operation.split();
            let endpoint = service
                .group(prefix)
                .endpoint_builder()
                .name(name)
                .add(name)
                .await
                .map_err(|e| anyhow::anyhow!("cannot add endpoint {}: {e}", operation.subject()))?;
            tasks.push(tokio::spawn(serve(
                endpoint,
                operation,
                state.clone(),
                max_inflight.max(1),
                shutdown.clone(),
            )));
        }
        // Subscriptions are registered with the server before callers are
        // told the service is up.
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

async fn serve(
    mut endpoint: Endpoint,
    operation: Operation,
    state: AppState,
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
                inflight.spawn(handle(operation, request, state.clone()));
            }
        }
    }
    // Unsubscribing closes the subscription; what it already holds is still
    // answered rather than left to time out.
    if let Err(error) = endpoint.stop().await {
        tracing::warn!(%error, subject = operation.subject(), "cannot unsubscribe");
    }
    let drain = async {
        while let Some(request) = endpoint.next().await {
            inflight.spawn(handle(operation, request, state.clone()));
        }
        while let Some(done) = inflight.join_next().await {
            report(done);
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!(
            subject = operation.subject(),
            "rpc requests still running at shutdown were abandoned"
        );
    }
}

fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(%error, "an rpc handler panicked");
    }
}

async fn handle(operation: Operation, request: Request, state: AppState) {
    let span = tracing::info_span!(
        "rpc request",
        otel.name = operation.subject(),
        otel.kind = "server",
        rpc.system = "nats",
        rpc.service = PRODUCT_SERVICE,
        rpc.method = operation.split().1,
        rpc.error_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    // Continue the caller's trace: its outbox events then belong to it too.
    if let Some(headers) = &request.message.headers {
        let parent = extract_context(headers);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let payload = request.message.payload.clone();
    let reply = dispatch(operation, &payload, &state)
        .instrument(span.clone())
        .await;
    if let Err(error) = &reply {
        span.record("rpc.error_code", error.code);
        if error.code >= 500 {
            span.record("otel.status_code", "ERROR");
        }
    }
    if let Err(error) = request.respond(reply).await {
        tracing::warn!(parent: &span, %error, "cannot send the rpc reply");
    }
}

async fn dispatch(
    operation: Operation,
    payload: &[u8],
    state: &AppState,
) -> Result<Bytes, ServiceError> {
    match operation {
        Operation::Lookup => {
            answer(payload, |request: LookupRequest| async move {
                inventory::lookup(state, &request).await
            })
            .await
        }
        Operation::Reserve => {
            answer(payload, |request: ReserveRequest| async move {
                inventory::reserve(state, &request).await
            })
            .await
        }
        Operation::Release => {
            answer(payload, |request: ReleaseRequest| async move {
                inventory::release(state, &request).await
            })
            .await
        }
    }
}

/// Decodes the request, runs `work`, encodes the answer; every failure
/// becomes a service error whose code has the HTTP meaning (400: the
/// caller's fault, 500: ours).
async fn answer<Req, Resp, F, Fut>(payload: &[u8], work: F) -> Result<Bytes, ServiceError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, InventoryError>>,
{
    let request: Req = serde_json::from_slice(payload).map_err(|e| {
        tracing::info!(error = %e, "malformed rpc request");
        service_error(400, format!("malformed request: {e}"))
    })?;
    match work(request).await {
        Ok(response) => serde_json::to_vec(&response).map(Bytes::from).map_err(|e| {
            tracing::error!(error = %e, "cannot encode the rpc reply");
            service_error(500, INTERNAL.into())
        }),
        Err(InventoryError::Invalid(reason)) => {
            tracing::info!(%reason, "invalid rpc request");
            Err(service_error(400, reason))
        }
        Err(InventoryError::Unexpected(error)) => {
            tracing::error!(error = format!("{error:#}"), "rpc request failed");
            Err(service_error(500, INTERNAL.into()))
        }
    }
}

const INTERNAL: &str = "internal error; it has been logged";

fn service_error(code: usize, status: String) -> ServiceError {
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
    fn group_and_endpoint_compose_to_the_contract_subjects() {
        for operation in Operation::ALL {
            let (prefix, name) = operation.split();
            assert_eq!(format!("{prefix}.{name}"), operation.subject());
        }
        assert_eq!(
            Operation::Reserve.split(),
            ("shopmesh.rpc.product", "reserve")
        );
    }

    #[test]
    fn service_error_status_is_one_bounded_line() {
        let error = service_error(400, format!("bad\r\nrequest {}", "x".repeat(500)));
        assert!(!error.status.contains('\n') && !error.status.contains('\r'));
        assert_eq!(error.status.chars().count(), 256);
        assert_eq!(error.code, 400);
    }
}
