//! The three domain services on one nats-server, each with a fresh database
//! of the same kind, started in-process on free ports.

#![allow(dead_code)] // each test file uses part of this helper

use shopmesh_shared::settings::Env;
use shopmesh_shared::testkit::{DatabaseKind, TestBackbone, TestDatabase};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const AUTH_KEY: &str = "mesh-tests-key-0123456789abcdef01234";
pub const ADMIN_TOKEN: &str = "mesh-tests-admin-token";

pub struct Mesh {
    pub backbone: TestBackbone,
    pub user: String,
    pub product: String,
    pub order: String,
    pub http: reqwest::Client,
    /// The service processes, when started natively (`start_native`).
    pub processes: Vec<Child>,
    _databases: Vec<TestDatabase>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The service binaries sit beside this crate's `shopmesh` binary
/// (`scripts/test.sh` builds every binary of the workspace first).
fn service_binary(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_shopmesh")).parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn database_like(kind: DatabaseKind) -> TestDatabase {
    match kind {
        DatabaseKind::Sqlite => TestDatabase::sqlite(),
        DatabaseKind::Postgres => {
            let url = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
            TestDatabase::postgres(&url).await
        }
    }
}

fn env(backbone: &TestBackbone, database: &TestDatabase) -> Env {
    Env::from_pairs([
        ("SHOPMESH_HTTP_PORT", "0".to_owned()),
        ("SHOPMESH_HTTP_WORKERS", "1".to_owned()),
        ("NATS_URL", backbone.server.url()),
        ("DATABASE_URL", database.url.clone()),
        ("SHOPMESH_AUTH_KEY", AUTH_KEY.to_owned()),
        ("SHOPMESH_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("SHOPMESH_OUTBOX_POLL", "50ms".to_owned()),
        // Cheap password hashing: the cost is tested in the user service.
        ("SHOPMESH_PASSWORD_MEMORY_KIB", "1024".to_owned()),
        ("SHOPMESH_PASSWORD_ITERATIONS", "1".to_owned()),
    ])
}

impl Mesh {
    /// The mesh on databases of `kind`.
    pub async fn start(kind: DatabaseKind) -> Self {
        let backbone = TestBackbone::start().await;
        let databases = vec![
            database_like(kind).await,
            database_like(kind).await,
            database_like(kind).await,
        ];

        let settings =
            shopmesh_user::settings::Settings::from_env(&env(&backbone, &databases[0])).unwrap();
        let app = shopmesh_user::startup::Application::build(settings)
            .await
            .unwrap();
        let user = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());

        let settings =
            shopmesh_product::settings::Settings::from_env(&env(&backbone, &databases[1])).unwrap();
        let app = shopmesh_product::startup::Application::build(settings)
            .await
            .unwrap();
        let product = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());

        let settings =
            shopmesh_order::settings::Settings::from_env(&env(&backbone, &databases[2])).unwrap();
        let app = shopmesh_order::startup::Application::build(settings)
            .await
            .unwrap();
        let order = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());

        Self {
            backbone,
            user,
            product,
            order,
            http: reqwest::Client::new(),
            processes: Vec::new(),
            _databases: databases,
        }
    }

    /// The mesh as operators run it: the three service binaries as processes,
    /// configured only through their environment, on databases of `kind`.
    pub async fn start_native(kind: DatabaseKind) -> Self {
        let backbone = TestBackbone::start().await;
        let databases = vec![
            database_like(kind).await,
            database_like(kind).await,
            database_like(kind).await,
        ];
        let mut urls = Vec::new();
        let mut processes = Vec::new();
        for (service, database) in ["user", "product", "order"].iter().zip(&databases) {
            let port = free_port();
            let mut command = Command::new(service_binary(&format!("shopmesh-{service}")));
            for (name, value) in env(&backbone, database).pairs() {
                command.env(name, value);
            }
            let child = command
                .env("SHOPMESH_HTTP_PORT", port.to_string())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            processes.push(child);
            urls.push(format!("http://127.0.0.1:{port}"));
        }
        let http = reqwest::Client::new();
        for url in &urls {
            shopmesh_shared::testkit::eventually(
                std::time::Duration::from_secs(30),
                &format!("{url}/readyz answers 200"),
                async || {
                    http.get(format!("{url}/readyz"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                },
            )
            .await;
        }
        let order = urls.pop().unwrap();
        let product = urls.pop().unwrap();
        let user = urls.pop().unwrap();
        Self {
            backbone,
            user,
            product,
            order,
            http,
            processes,
            _databases: databases,
        }
    }

    /// SIGKILL to the native service at `index` (0 user, 1 product, 2 order),
    /// which then leaves the list.
    pub fn kill_native(&mut self, index: usize) {
        let mut child = self.processes.remove(index);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM to every service process; their exit statuses, in order.
    pub fn terminate(&mut self) -> Vec<std::process::ExitStatus> {
        for child in &self.processes {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
        self.processes
            .drain(..)
            .map(|mut child| child.wait().unwrap())
            .collect()
    }

    /// Registers a shopper and logs in; returns the token.
    pub async fn shopper(&self, email: &str) -> String {
        self.shopper_with_id(email).await.1
    }

    /// Registers a shopper and logs in; returns (user id, token).
    pub async fn shopper_with_id(&self, email: &str) -> (String, String) {
        let created = self
            .http
            .post(format!("{}/users", self.user))
            .json(&serde_json::json!({ "email": email, "name": "Test Shopper", "password": "correct horse battery" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let body: serde_json::Value = created.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        let session: serde_json::Value = self
            .http
            .post(format!("{}/sessions", self.user))
            .json(&serde_json::json!({ "email": email, "password": "correct horse battery" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (id, session["token"].as_str().unwrap().to_owned())
    }

    /// Creates a product as admin; returns its id.
    pub async fn product(
        &self,
        name: &str,
        category: &str,
        price_cents: i64,
        stock: i64,
    ) -> String {
        let response = self
            .http
            .post(format!("{}/products", self.product))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "name": name, "category": category, "price_cents": price_cents, "stock": stock }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn add_to_cart(
        &self,
        token: &str,
        product_id: &str,
        quantity: i64,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/cart/items", self.order))
            .bearer_auth(token)
            .json(&serde_json::json!({ "product_id": product_id, "quantity": quantity }))
            .send()
            .await
            .unwrap()
    }

    pub async fn checkout(&self, token: &str) -> reqwest::Response {
        self.post(&format!("{}/orders", self.order), token).await
    }

    /// GET `url` with an optional bearer token; the JSON body.
    pub async fn get_json(&self, url: &str, token: Option<&str>) -> serde_json::Value {
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// POST `url` with a bearer token and no body.
    pub async fn post(&self, url: &str, token: &str) -> reqwest::Response {
        self.http.post(url).bearer_auth(token).send().await.unwrap()
    }

    pub async fn stock(&self, product_id: &str) -> i64 {
        let url = format!("{}/products/{product_id}", self.product);
        self.get_json(&url, None).await["stock"].as_i64().unwrap()
    }

    /// Every event in the stream so far: (type, message id, traceparent, event).
    pub async fn events(&self) -> Vec<(String, String, String, shopmesh_shared::events::Event)> {
        use shopmesh_shared::nats::headers as h;
        let stream = self.backbone.settings.streams.events_stream.clone();
        let count = self.backbone.message_count(&stream).await;
        let mut events = Vec::new();
        for sequence in 1..=count {
            let message = self.backbone.stored(sequence).await;
            let header = |name| {
                message
                    .headers
                    .get(name)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            let event = h::decode_message(Some(&message.headers), &message.payload).unwrap();
            events.push((
                header(h::EVENT_TYPE),
                header(h::MESSAGE_ID),
                header(h::TRACEPARENT),
                event,
            ));
        }
        events
    }
}

/// The database kinds this run covers: SQLite, and Postgres when configured.
pub fn kinds() -> Vec<DatabaseKind> {
    let mut kinds = vec![DatabaseKind::Sqlite];
    if std::env::var("TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        kinds.push(DatabaseKind::Postgres);
    }
    kinds
}
