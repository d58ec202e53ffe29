//! The NATS request-reply face of the service: the catalogue's answers to
//! `shopmesh_shared::rpc`'s lookup, reserve and release, served by the shared
//! RPC server (service API, so `$SRV.PING.product` / `nats micro ls` find it).

use crate::inventory::{self, InventoryError};
use crate::state::AppState;
use bytes::Bytes;
use shopmesh_shared::rpc::{
    LookupRequest, PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE, PRODUCT_SERVICE,
    ReleaseRequest, ReserveRequest, RpcFailure, RpcHandler, RpcServer, RpcService, answer_json,
};

/// Every subject the product service answers.
pub const SUBJECTS: [&str; 3] = [PRODUCT_LOOKUP, PRODUCT_RESERVE, PRODUCT_RELEASE];

impl From<InventoryError> for RpcFailure {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::Invalid(reason) => RpcFailure::Invalid(reason),
            InventoryError::Unexpected(error) => RpcFailure::Internal(error),
        }
    }
}

#[derive(Clone)]
struct Inventory(AppState);

impl RpcHandler for Inventory {
    async fn handle(&self, subject: &'static str, payload: Bytes) -> Result<Bytes, RpcFailure> {
        let state = &self.0;
        match subject {
            PRODUCT_LOOKUP => {
                answer_json(&payload, |request: LookupRequest| async move {
                    Ok(inventory::lookup(state, &request).await?)
                })
                .await
            }
            PRODUCT_RESERVE => {
                answer_json(&payload, |request: ReserveRequest| async move {
                    Ok(inventory::reserve(state, &request).await?)
                })
                .await
            }
            PRODUCT_RELEASE => {
                answer_json(&payload, |request: ReleaseRequest| async move {
                    Ok(inventory::release(state, &request).await?)
                })
                .await
            }
            other => Err(RpcFailure::Invalid(format!("no endpoint {other}"))),
        }
    }
}

/// Registers the service with NATS and starts answering.
pub async fn start(
    client: &async_nats::Client,
    state: AppState,
    max_inflight: usize,
) -> anyhow::Result<RpcServer> {
    let spec = RpcService {
        name: PRODUCT_SERVICE,
        description: "shopmesh product catalogue: price lookup, stock reservation and release",
        version: env!("CARGO_PKG_VERSION"),
        subjects: &SUBJECTS,
        queue_group: None,
        max_inflight,
    };
    RpcServer::start(client, spec, Inventory(state)).await
}
