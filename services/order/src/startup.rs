//! Building and running the order service.

use crate::catalog::Catalog;
use crate::releaser::StockReleaser;
use crate::routes::{self, AppState};
use crate::settings::Settings;
use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use shopmesh_shared::service::{ServiceCore, bind, http_server, migrate};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Application {
    port: u16,
    server: Server,
    core: ServiceCore,
    releaser: JoinHandle<()>,
    stop_releaser: CancellationToken,
}

impl Application {
    /// Connects NATS and the database, migrates, and binds the HTTP port
    /// (port 0 picks a free one; see [`Application::port`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let core = ServiceCore::start(crate::SERVICE, &settings.core).await?;
        migrate(&core.pool, sqlx::migrate!("./migrations"), crate::SERVICE).await?;
        let catalog = Catalog::new(core.client.clone(), settings.rpc_timeout);
        let releaser = StockReleaser::new(core.pool.clone(), core.writes.clone(), catalog.clone());
        let state = web::Data::new(AppState {
            pool: core.pool.clone(),
            writes: core.writes.clone(),
            catalog,
            publisher: core.publisher.clone(),
            behaviour: core.behaviour.clone(),
            outbox_wake: core.outbox_wake.clone(),
            release_wake: releaser.notifier(),
        });
        let key = settings.core.auth.token_key.clone();
        let listener = bind(&settings.core.http)?;
        let port = listener.local_addr()?.port();
        let server = http_server(
            listener,
            &settings.core.http,
            core.readiness_checks(),
            move |cfg| {
                cfg.app_data(state.clone()).app_data(key.clone());
                routes::configure(cfg);
            },
        )?;
        let stop_releaser = CancellationToken::new();
        let releaser = tokio::spawn(releaser.run(stop_releaser.clone()));
        Ok(Self {
            port,
            server,
            core,
            releaser,
            stop_releaser,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server like SIGTERM does: no new connections, in-flight
    /// requests finish within the grace period.
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then stops the stock releaser (what it has not
    /// released stays recorded) and drains the outbox and the behaviour buffer.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.stop_releaser.cancel();
        let _ = self.releaser.await;
        self.core.shutdown().await;
        served.map_err(Into::into)
    }
}
