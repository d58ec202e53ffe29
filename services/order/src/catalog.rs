//! The product service, as the order service sees it: three NATS calls.

use shopmesh_shared::events::{OrderId, ProductId};
use shopmesh_shared::rpc::{
    self, LookupRequest, LookupResponse, PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE,
    ProductInfo, ReleaseRequest, ReleaseResponse, ReserveLine, ReserveRequest, ReserveResponse,
    RpcError,
};
use std::time::Duration;

#[derive(Clone)]
pub struct Catalog {
    client: async_nats::Client,
    timeout: Duration,
}

impl Catalog {
    pub fn new(client: async_nats::Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// The product, or `None` when it does not exist.
    #[tracing::instrument(name = "product lookup", skip(self))]
    pub async fn product(&self, id: ProductId) -> Result<Option<ProductInfo>, RpcError> {
        let request = LookupRequest {
            product_ids: vec![id],
        };
        let response: LookupResponse =
            rpc::call(&self.client, PRODUCT_LOOKUP, &request, self.timeout).await?;
        Ok(response.products.into_iter().find(|p| p.product_id == id))
    }

    #[tracing::instrument(name = "stock reservation", skip(self, lines), fields(lines = lines.len()))]
    pub async fn reserve(
        &self,
        order_id: OrderId,
        lines: Vec<ReserveLine>,
    ) -> Result<ReserveResponse, RpcError> {
        let request = ReserveRequest { order_id, lines };
        rpc::call(&self.client, PRODUCT_RESERVE, &request, self.timeout).await
    }

    #[tracing::instrument(name = "stock release", skip(self))]
    pub async fn release(&self, order_id: OrderId) -> Result<ReleaseResponse, RpcError> {
        let request = ReleaseRequest { order_id };
        rpc::call(&self.client, PRODUCT_RELEASE, &request, self.timeout).await
    }
}
