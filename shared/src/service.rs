//! What every domain service runs besides its own routes: settings shared by
//! all of them, and [`ServiceCore`], which connects NATS (refusing an old
//! server), provisions the streams, opens the database, runs the outbox relay
//! and the behaviour publisher, and shuts them down in order.
//!
//! A service's `startup.rs` calls [`ServiceCore::start`], applies its own
//! migrations, then serves its routes with [`http_server`].

use crate::auth::TokenKey;
use crate::behaviour::BehaviourPublisher;
use crate::db::{self, DatabaseSettings};
use crate::db_writes::WriteGate;
use crate::http::{
    JsonLimit, ReadinessCheck, healthz, no_route, readiness_response, trace_requests,
};
use crate::nats::{EventPublisher, connect, jetstream_context, provision_streams};
use crate::outbox::{self, OutboxRelay, RelaySettings};
use crate::settings::{BackboneSettings, Env, Secret, SettingsError};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware::from_fn, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where a service listens.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `SHOPMESH_HTTP_HOST`, default `127.0.0.1` (`0.0.0.0` in containers).
    pub host: String,
    /// `SHOPMESH_HTTP_PORT`, the service's default; 0 picks a free port.
    pub port: u16,
    /// `SHOPMESH_HTTP_WORKERS`, default: one per core.
    pub workers: usize,
    /// `SHOPMESH_HTTP_BODY_LIMIT`, default 64KiB; larger bodies get 413.
    pub body_limit: usize,
    /// `SHOPMESH_SHUTDOWN_GRACE`, default 10s to finish in-flight requests.
    pub shutdown_grace: Duration,
}

/// Session tokens and the admin token.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `SHOPMESH_AUTH_KEY` (required, >= 32 bytes): signs and verifies tokens.
    pub token_key: TokenKey,
    /// `SHOPMESH_TOKEN_TTL`, default 1h.
    pub token_ttl: Duration,
    /// `SHOPMESH_ADMIN_TOKEN`: the bearer token product writes need.
    pub admin_token: Option<Secret>,
}

/// Settings every domain service has.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub backbone: BackboneSettings,
    pub relay: RelaySettings,
    pub auth: AuthSettings,
    /// `SHOPMESH_BEHAVIOUR_BUFFER`, default 10000 events waiting to publish.
    pub behaviour_buffer: usize,
}

impl CoreSettings {
    /// `service` names the SQLite file; `default_port` applies without
    /// `SHOPMESH_HTTP_PORT`.
    pub fn from_env(env: &Env, service: &str, default_port: u16) -> Result<Self, SettingsError> {
        let key = env
            .secret("SHOPMESH_AUTH_KEY")
            .ok_or_else(|| SettingsError {
                variable: "SHOPMESH_AUTH_KEY".into(),
                value: String::new(),
                expected: "a secret of at least 32 bytes shared by all services".into(),
            })?;
        let token_key = TokenKey::new(key).ok_or_else(|| SettingsError {
            variable: "SHOPMESH_AUTH_KEY".into(),
            value: "[redacted]".into(),
            expected: "a secret of at least 32 bytes".into(),
        })?;
        let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            http: HttpSettings {
                host: env.string_or("SHOPMESH_HTTP_HOST", "127.0.0.1"),
                port: env.parse_or("SHOPMESH_HTTP_PORT", default_port, "a port number 0-65535")?,
                workers: env.parse_with(
                    "SHOPMESH_HTTP_WORKERS",
                    default_workers,
                    "a whole number from 1 to 64",
                    |v| v.parse().ok().filter(|n| (1..=64).contains(n)),
                )?,
                body_limit: env.bytes_or("SHOPMESH_HTTP_BODY_LIMIT", 64 * 1024)? as usize,
                shutdown_grace: env
                    .duration_or("SHOPMESH_SHUTDOWN_GRACE", Duration::from_secs(10))?,
            },
            database: DatabaseSettings::from_env(env, service)?,
            backbone: BackboneSettings::from_env(env)?,
            relay: RelaySettings::from_env(env)?,
            auth: AuthSettings {
                token_key,
                token_ttl: env.duration_or("SHOPMESH_TOKEN_TTL", Duration::from_secs(3600))?,
                admin_token: env.secret("SHOPMESH_ADMIN_TOKEN"),
            },
            behaviour_buffer: env.parse_with(
                "SHOPMESH_BEHAVIOUR_BUFFER",
                10_000,
                "a whole number above 0",
                |v| v.parse().ok().filter(|n| *n > 0),
            )?,
        })
    }

    /// Every variable [`CoreSettings::from_env`] reads.
    pub fn variables() -> Vec<&'static str> {
        let mut names = vec![
            "SHOPMESH_HTTP_HOST",
            "SHOPMESH_HTTP_PORT",
            "SHOPMESH_HTTP_WORKERS",
            "SHOPMESH_HTTP_BODY_LIMIT",
            "SHOPMESH_SHUTDOWN_GRACE",
            "SHOPMESH_AUTH_KEY",
            "SHOPMESH_TOKEN_TTL",
            "SHOPMESH_ADMIN_TOKEN",
            "SHOPMESH_BEHAVIOUR_BUFFER",
        ];
        names.extend_from_slice(DatabaseSettings::VARIABLES);
        names.extend_from_slice(BackboneSettings::VARIABLES);
        names.extend_from_slice(RelaySettings::VARIABLES);
        names
    }
}

/// The running shared machinery of one service.
pub struct ServiceCore {
    pub name: &'static str,
    pub client: async_nats::Client,
    pub publisher: EventPublisher,
    pub pool: sqlx::AnyPool,
    /// Every write to `pool` goes through it (see `db_writes`).
    pub writes: WriteGate,
    pub behaviour: BehaviourPublisher,
    /// Wake the outbox relay after committing a transaction that enqueued.
    pub outbox_wake: Arc<Notify>,
    shutdown: CancellationToken,
    relay: JoinHandle<()>,
    behaviour_task: JoinHandle<()>,
}

impl ServiceCore {
    /// Connects and starts the background machinery. Fails with the reason
    /// (unreachable or too-old NATS, unreachable database) rather than
    /// starting half-way.
    pub async fn start(name: &'static str, settings: &CoreSettings) -> anyhow::Result<Self> {
        let client = connect(&settings.backbone.nats, name).await?;
        let js = jetstream_context(client.clone(), &settings.backbone.publisher);
        provision_streams(&js, &settings.backbone.streams).await?;
        let pool = db::connect(&settings.database).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot open database {}: {e}",
                db::redact_url(&settings.database.url)
            )
        })?;
        outbox::ensure_schema(&pool, settings.database.kind).await?;
        let publisher = EventPublisher::new(
            client.clone(),
            &settings.backbone.publisher,
            &settings.backbone.streams,
        );
        let writes = WriteGate::new(settings.database.kind);
        let relay = OutboxRelay::new(
            pool.clone(),
            writes.clone(),
            publisher.clone(),
            settings.relay.clone(),
        );
        let outbox_wake = relay.notifier();
        let shutdown = CancellationToken::new();
        let relay = tokio::spawn(relay.run(shutdown.clone()));
        let (behaviour, behaviour_task) =
            BehaviourPublisher::spawn(publisher.clone(), settings.behaviour_buffer);
        Ok(Self {
            name,
            client,
            publisher,
            pool,
            writes,
            behaviour,
            outbox_wake,
            shutdown,
            relay,
            behaviour_task,
        })
    }

    /// Database and NATS, for `/readyz`.
    pub fn readiness_checks(&self) -> Vec<ReadinessCheck> {
        vec![
            ReadinessCheck::database(self.pool.clone()),
            ReadinessCheck::nats(self.client.clone()),
        ]
    }

    /// After the HTTP server has drained: relay what the outbox holds (within
    /// its drain timeout), publish buffered behaviour events, close the pool.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.relay.await;
        drop(self.behaviour);
        let _ = self.behaviour_task.await;
        // Bounded: with the broker down a flush would wait for ever.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
        self.pool.close().await;
    }
}

/// Applies a service's migrations, recorded in its own table
/// (`_sqlx_migrations_<service>`) so that services can share one database
/// without seeing each other's migrations as unknown. The migrations are
/// portable SQL: one folder serves SQLite and Postgres.
pub async fn migrate(
    pool: &sqlx::AnyPool,
    mut migrator: sqlx::migrate::Migrator,
    service: &str,
) -> anyhow::Result<()> {
    migrator.dangerous_set_table_name(format!("_sqlx_migrations_{service}"));
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate the {service} database: {e}"))
}

/// Binds `host:port` (port 0 picks one; read it back from the listener).
pub fn bind(http: &HttpSettings) -> std::io::Result<TcpListener> {
    TcpListener::bind((http.host.as_str(), http.port))
}

/// An actix-web server with the shared conventions: request tracing and
/// metrics, the JSON body limit, `/healthz`, `/readyz` over `checks`,
/// `/metrics`, and `configure`'s routes.
/// Stopping it (SIGTERM or its handle) stops accepting and gives in-flight
/// requests `shutdown_grace` to finish; SIGINT and SIGQUIT stop it at once.
/// Must be called inside a Tokio runtime (it watches the signals there).
pub fn http_server<F>(
    listener: TcpListener,
    http: &HttpSettings,
    checks: Vec<ReadinessCheck>,
    configure: F,
) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let checks = web::Data::new(checks);
    let limit = JsonLimit(http.body_limit);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(trace_requests))
            .app_data(limit)
            .app_data(checks.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_text))
            .configure(configure.clone())
            .default_service(web::to(no_route))
    })
    .workers(http.workers)
    .shutdown_timeout(http.shutdown_grace.as_secs())
    .disable_signals()
    .listen(listener)?
    .run();
    stop_on_signals(server.handle());
    Ok(server)
}

/// Stops the server on SIGTERM (gracefully) or SIGINT/SIGQUIT (at once),
/// as actix-server's own handler does, but leaves the actix `System`
/// running: that handler also stops the `System`, and with it every
/// arbiter, so the analytics partition actors were gone before the final
/// snapshots the caller takes after the server has stopped. The caller
/// (its `run_until_stopped`) then drains and flushes as for any stop.
fn stop_on_signals(server: actix_web::dev::ServerHandle) {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let watch = |kind: SignalKind| match signal(kind) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, ?kind, "cannot watch this signal");
            None
        }
    };
    async fn received(signal: &mut Option<Signal>) {
        match signal {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let mut term = watch(SignalKind::terminate());
    let mut int = watch(SignalKind::interrupt());
    let mut quit = watch(SignalKind::quit());
    tokio::spawn(async move {
        let graceful = tokio::select! {
            _ = received(&mut term) => {
                tracing::info!("SIGTERM received; stopping gracefully");
                true
            }
            _ = received(&mut int) => {
                tracing::info!("SIGINT received; stopping now");
                false
            }
            _ = received(&mut quit) => {
                tracing::info!("SIGQUIT received; stopping now");
                false
            }
        };
        server.stop(graceful).await;
    });
}

/// `GET /metrics`: the process's metrics in the Prometheus text format.
pub async fn metrics_text() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::metrics().render())
}

async fn readyz(checks: web::Data<Vec<ReadinessCheck>>) -> actix_web::HttpResponse {
    readiness_response(&checks).await
}
