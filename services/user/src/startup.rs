//! Wiring: the shared service core (NATS, streams, database, outbox relay,
//! behaviour publisher), this service's migrations, the password hasher, and
//! the HTTP server with the routes and their app data. Shutdown runs in
//! order: the server drains in-flight requests, then the core relays what
//! the outbox holds and flushes behaviour events.

use crate::SERVICE;
use crate::password::PasswordHasher;
use crate::routes::{self, SessionIssuer};
use crate::settings::Settings;
use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use anyhow::Context;
use shopmesh_shared::service::{ServiceCore, bind, http_server, migrate};

/// The running user service.
pub struct Application {
    port: u16,
    server: Server,
    core: ServiceCore,
}

impl Application {
    /// Connects everything and starts serving; fails with the reason rather
    /// than starting half-way.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let core = ServiceCore::start(SERVICE, &settings.core).await?;
        migrate(&core.pool, sqlx::migrate!("./migrations"), SERVICE).await?;
        let hasher = PasswordHasher::new(settings.password).await?;

        let listener = bind(&settings.core.http).with_context(|| {
            format!(
                "cannot listen on {}:{}",
                settings.core.http.host, settings.core.http.port
            )
        })?;
        let port = listener.local_addr()?.port();

        let pool = web::Data::new(core.pool.clone());
        let writes = web::Data::new(core.writes.clone());
        let publisher = web::Data::new(core.publisher.clone());
        let behaviour = web::Data::new(core.behaviour.clone());
        let outbox_wake = web::Data::from(core.outbox_wake.clone());
        let hasher = web::Data::new(hasher);
        let token_key = settings.core.auth.token_key.clone();
        let issuer = web::Data::new(SessionIssuer {
            key: token_key.clone(),
            ttl_seconds: i64::try_from(settings.core.auth.token_ttl.as_secs())
                .context("SHOPMESH_TOKEN_TTL is too long")?,
        });
        let configure = move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(pool.clone())
                .app_data(writes.clone())
                .app_data(publisher.clone())
                .app_data(behaviour.clone())
                .app_data(outbox_wake.clone())
                .app_data(hasher.clone())
                .app_data(issuer.clone())
                // The AuthenticatedUser extractor looks the key up directly.
                .app_data(token_key.clone())
                .configure(routes::configure);
        };
        let server = http_server(
            listener,
            &settings.core.http,
            core.readiness_checks(),
            configure,
        )?;
        tracing::info!(port, "user service listening");
        Ok(Application { port, server, core })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests, embedding).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM or the handle stops the server, then shuts
    /// the core down (outbox drain, behaviour flush, pool close).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await.context("HTTP server failed");
        self.core.shutdown().await;
        tracing::info!("user service stopped");
        served
    }
}
