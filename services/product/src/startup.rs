//! Building and running the service: the shared core (NATS, streams,
//! database, outbox relay, behaviour publisher), this service's migrations,
//! the HTTP server and the NATS request-reply endpoints; and stopping them in
//! order.

use crate::cache::{ListingCache, MAX_LISTINGS, MAX_PRODUCTS, ProductCache};
use crate::settings::Settings;
use crate::state::AppState;
use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use shopmesh_shared::http::AdminToken;
use shopmesh_shared::rpc::RpcServer;
use shopmesh_shared::service::{ServiceCore, bind, http_server, migrate};
use std::sync::Arc;

pub struct Application {
    port: u16,
    server: Server,
    core: ServiceCore,
    rpc: RpcServer,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let core = ServiceCore::start(crate::NAME, &settings.core).await?;
        migrate(&core.pool, sqlx::migrate!("./migrations"), crate::NAME).await?;

        let state = AppState {
            pool: core.pool.clone(),
            writes: core.writes.clone(),
            publisher: core.publisher.clone(),
            behaviour: core.behaviour.clone(),
            outbox_wake: core.outbox_wake.clone(),
            products: Arc::new(ProductCache::with_capacity(
                settings.product_cache_ttl,
                MAX_PRODUCTS,
            )),
            listings: Arc::new(ListingCache::with_capacity(
                settings.product_cache_ttl,
                MAX_LISTINGS,
            )),
            product_reads: Arc::default(),
        };
        let rpc = crate::rpc::start(&core.client, state.clone(), settings.rpc_max_inflight).await?;

        let listener = bind(&settings.core.http)?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(state);
        let token_key = settings.core.auth.token_key.clone();
        let admin = AdminToken(settings.admin_token.clone());
        let server = http_server(
            listener,
            &settings.core.http,
            core.readiness_checks(),
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(state.clone())
                    .app_data(token_key.clone())
                    .app_data(admin.clone())
                    .configure(crate::routes::routes);
            },
        )?;
        tracing::info!(port, "product service listening");
        Ok(Application {
            port,
            server,
            core,
            rpc,
        })
    }

    /// The port actually bound (useful with `SHOPMESH_HTTP_PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the HTTP server (gracefully) from elsewhere, e.g. a test.
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM or the handle stops the server; then lets
    /// in-flight requests finish, stops the NATS endpoints (answering what
    /// they already received), and drains the outbox and behaviour buffer.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.rpc.stop().await;
        self.core.shutdown().await;
        tracing::info!("product service stopped");
        Ok(served?)
    }
}
