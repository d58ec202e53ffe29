//! Starting the service against a real backbone and database, and the calls
//! and checks the tests share.

use actix_web::dev::ServerHandle;
use async_nats::jetstream::message::StreamMessage;
use serde_json::{Value, json};
use shopmesh_shared::events::Event;
use shopmesh_shared::nats::headers::{MESSAGE_ID, TRACEPARENT, decode_message};
use shopmesh_shared::nats::stored_event_count;
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use shopmesh_shared::testkit::{TestBackbone, TestDatabase, eventually};
use shopmesh_user::settings::Settings;
use shopmesh_user::startup::Application;
use sqlx::AnyPool;
use std::sync::Once;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The shared token key of the test deployment (>= 32 bytes).
pub const AUTH_KEY: &str = "test-auth-key-0123456789abcdef-0123456789";

/// How long asynchronous effects (outbox relay, behaviour publisher) may take.
pub const WITHIN: Duration = Duration::from_secs(15);

static TELEMETRY: Once = Once::new();

/// Telemetry once per test process, as `main` does it, so that request spans
/// have real trace ids and the W3C propagator reads incoming `traceparent`s.
/// Logs stay off unless `RUST_LOG` asks for them.
fn init_telemetry() {
    TELEMETRY.call_once(|| {
        let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into());
        let env = Env::from_pairs([("RUST_LOG", log)]);
        let settings = TelemetrySettings::from_env(&env, "user", "test").expect("settings");
        // Kept for the life of the process: the spans are not exported anyway.
        std::mem::forget(telemetry::init(&settings).expect("telemetry"));
    });
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub server: ServerHandle,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    /// The service's database, read directly to prove what was (not) written.
    pub db: AnyPool,
    pub backbone: TestBackbone,
    // Last: a Postgres test database is dropped with it.
    _database: TestDatabase,
}

/// The service on `database` with cheap password hashing (the production
/// cost takes ~0.3 s per hash in a debug build).
pub async fn spawn_app(database: TestDatabase) -> TestApp {
    spawn_app_with(
        database,
        &[
            ("SHOPMESH_PASSWORD_MEMORY_KIB", "1024"),
            ("SHOPMESH_PASSWORD_ITERATIONS", "1"),
        ],
    )
    .await
}

/// The service with `extra` settings on top of the test defaults.
pub async fn spawn_app_with(database: TestDatabase, extra: &[(&str, &str)]) -> TestApp {
    init_telemetry();
    let backbone = TestBackbone::start().await;
    let mut pairs: Vec<(String, String)> = vec![
        ("SHOPMESH_HTTP_PORT".into(), "0".into()),
        ("SHOPMESH_HTTP_WORKERS".into(), "2".into()),
        ("NATS_URL".into(), backbone.server.url()),
        ("DATABASE_URL".into(), database.url.clone()),
        ("SHOPMESH_AUTH_KEY".into(), AUTH_KEY.into()),
        ("SHOPMESH_PUBLISH_ACK_TIMEOUT".into(), "2s".into()),
        ("SHOPMESH_PUBLISH_BACKOFF".into(), "20ms".into()),
    ];
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let settings = Settings::from_env(&Env::from_pairs(pairs)).expect("valid test settings");
    let app = Application::build(settings)
        .await
        .expect("the application starts");
    let port = app.port();
    let server = app.server_handle();
    let running = tokio::spawn(app.run_until_stopped());
    let db = AnyPool::connect(&database.url)
        .await
        .expect("a direct connection to the service's database");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        server,
        running: Some(running),
        db,
        backbone,
        _database: database,
    }
}

/// A registration body.
pub fn registration(email: &str, name: &str, password: &str) -> Value {
    json!({ "email": email, "name": name, "password": password })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, body: &Value) -> reqwest::Response {
        self.post_json("/users", body).await
    }

    /// Registers and returns the created user (`{id, email, name}`).
    pub async fn register_user(&self, email: &str, name: &str, password: &str) -> Value {
        let response = self.register(&registration(email, name, password)).await;
        assert_eq!(response.status(), 201, "registration of {email}");
        response.json().await.expect("user JSON")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/sessions",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Logs in and returns the session (`{token, expires_at_ms}`).
    pub async fn session(&self, email: &str, password: &str) -> Value {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), 200, "login of {email}");
        response.json().await.expect("session JSON")
    }

    /// `GET /users/me` with `authorization` as the header's raw value.
    pub async fn me_with_header(&self, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url("/users/me"));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send().await.expect("request sent")
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.me_with_header(Some(&format!("Bearer {token}"))).await
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.db)
            .await
            .expect("count rows")
            .try_get::<i64, _>(0)
            .expect("a count")
    }

    pub async fn stream_count(&self) -> u64 {
        self.backbone.event_count().await
    }

    /// The message count, or `None` while NATS does not answer.
    async fn try_stream_count(&self) -> Option<u64> {
        stored_event_count(&self.backbone.js, &self.backbone.settings.streams)
            .await
            .ok()
    }

    /// Whether the test's own NATS client can read the stream (again).
    pub async fn nats_answers(&self) -> bool {
        self.try_stream_count().await.is_some()
    }

    /// Waits until the events stream holds exactly `n` messages.
    pub async fn wait_for_events(&self, n: u64) {
        eventually(WITHIN, &format!("{n} events in the stream"), async || {
            self.try_stream_count()
                .await
                .is_some_and(|count| count >= n)
        })
        .await;
        assert_eq!(self.stream_count().await, n, "exactly {n} events");
    }

    /// Every stored event message with its decoded event, oldest first.
    pub async fn events(&self) -> Vec<(StreamMessage, Event)> {
        let mut events = Vec::new();
        for message in self.backbone.stored_events().await {
            let event = decode_message(Some(&message.headers), &message.payload)
                .expect("every event decodes");
            events.push((message, event));
        }
        events
    }

    /// Stops the server as SIGTERM would and waits for `run_until_stopped`.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.server.stop(true).await;
        let running = self.running.take().expect("the app runs");
        tokio::time::timeout(Duration::from_secs(30), running)
            .await
            .expect("run_until_stopped returns after the server stops")
            .expect("the app task did not panic")
    }
}

/// Checks a problem response and returns its body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    field: Option<&str>,
) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("/problems/")),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body["field"].as_str(), field, "{body}");
    body
}

/// Checks the headers every event message carries.
pub fn assert_event_headers(message: &StreamMessage, event: &Event) {
    assert_eq!(
        message
            .headers
            .get(MESSAGE_ID)
            .map(|v| v.as_str().to_owned()),
        Some(event.meta.event_id.to_string()),
        "Nats-Msg-Id is the event id"
    );
    let traceparent = message
        .headers
        .get(TRACEPARENT)
        .expect("a traceparent header")
        .as_str();
    assert_eq!(traceparent.len(), 55, "{traceparent}");
    assert!(traceparent.starts_with("00-"), "{traceparent}");
}

/// The trace id inside a `traceparent` value.
pub fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).expect("a trace id")
}

/// A `traceparent` as an upstream caller would send it.
pub const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const CALLER_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
