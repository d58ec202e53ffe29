//! The domain services on one nats-server, each with a fresh database of the
//! same kind: in-process on free ports (`start`), or as their binaries
//! (`start_native`, `start_native_with`, which can add analytics, extra
//! environment, log files and a NATS password).

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
    /// The analytics service, when started natively with it.
    pub analytics: Option<String>,
    pub http: reqwest::Client,
    /// The service processes, when started natively (`start_native`): user,
    /// product, order, then analytics when asked for.
    pub processes: Vec<Child>,
    _databases: Vec<TestDatabase>,
}

/// How [`Mesh::start_native_with`] runs the service binaries.
#[derive(Debug, Default, Clone)]
pub struct NativeOptions {
    /// Also run `shopmesh-analytics`.
    pub analytics: bool,
    /// More environment for every service, applied last (it wins over the
    /// defaults, `RUST_LOG=warn` included).
    pub env: Vec<(String, String)>,
    /// Each service's standard output and error go to
    /// `<dir>/<service>.stdout` and `<dir>/<service>.stderr`; otherwise
    /// standard output is dropped and standard error (the logs) goes to the
    /// test's own.
    pub log_dir: Option<PathBuf>,
    /// NATS user and password: the broker admits only them and every service
    /// gets them through `NATS_USER` / `NATS_PASSWORD`.
    pub nats_credentials: Option<(String, String)>,
    /// Also write those credentials into every `NATS_URL`
    /// (`nats://user:password@host:port`), the other way operators give them.
    pub nats_credentials_in_url: bool,
    /// A password written into Postgres `DATABASE_URL`s (the test server
    /// trusts local connections, so it is carried but not checked), for tests
    /// that look for it where it must not be.
    pub database_password: Option<String>,
}

/// `postgres://user@host/db` with `password` after the user.
fn with_password(url: &str, password: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('@') {
        Some(at) => {
            let at = scheme_end + at;
            let user = url[scheme_end..at].split(':').next().unwrap_or_default();
            format!("{}{user}:{password}{}", &url[..scheme_end], &url[at..])
        }
        None => url.to_owned(),
    }
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
            analytics: None,
            http: reqwest::Client::new(),
            processes: Vec::new(),
            _databases: databases,
        }
    }

    /// The mesh as operators run it: the three service binaries as processes,
    /// configured only through their environment, on databases of `kind`.
    pub async fn start_native(kind: DatabaseKind) -> Self {
        Self::start_native_with(kind, NativeOptions::default()).await
    }

    /// [`Mesh::start_native`] with `options`.
    pub async fn start_native_with(kind: DatabaseKind, options: NativeOptions) -> Self {
        let backbone = match &options.nats_credentials {
            Some((user, password)) => TestBackbone::start_with_password(user, password).await,
            None => TestBackbone::start().await,
        };
        let mut databases = vec![
            database_like(kind).await,
            database_like(kind).await,
            database_like(kind).await,
        ];
        if let Some(password) = &options.database_password {
            for database in &mut databases {
                if database.kind == DatabaseKind::Postgres {
                    database.url = with_password(&database.url, password);
                }
            }
        }
        let mut services: Vec<(&str, Env)> = ["user", "product", "order"]
            .into_iter()
            .zip(&databases)
            .map(|(service, database)| (service, env(&backbone, database)))
            .collect();
        if options.analytics {
            services.push((
                "analytics",
                Env::from_pairs([
                    ("SHOPMESH_HTTP_WORKERS", "1".to_owned()),
                    ("SHOPMESH_ANALYTICS_ARBITERS", "2".to_owned()),
                    ("NATS_URL", backbone.server.url()),
                ]),
            ));
        }
        let mut urls = Vec::new();
        let mut processes = Vec::new();
        for (service, service_env) in services {
            let port = free_port();
            let mut command = Command::new(service_binary(&format!("shopmesh-{service}")));
            for (name, value) in service_env.pairs() {
                command.env(name, value);
            }
            command
                .env("SHOPMESH_HTTP_PORT", port.to_string())
                .env("RUST_LOG", "warn");
            if let Some((user, password)) = &options.nats_credentials {
                command
                    .env("NATS_USER", user)
                    .env("NATS_PASSWORD", password);
                if options.nats_credentials_in_url {
                    let url = backbone.server.url();
                    let url = url.replacen("nats://", &format!("nats://{user}:{password}@"), 1);
                    command.env("NATS_URL", url);
                }
            }
            for (name, value) in &options.env {
                command.env(name, value);
            }
            match &options.log_dir {
                Some(dir) => {
                    let file = |stream: &str| {
                        std::fs::File::create(dir.join(format!("{service}.{stream}")))
                            .expect("create a service log file")
                    };
                    command.stdout(file("stdout")).stderr(file("stderr"));
                }
                None => {
                    command.stdout(Stdio::null());
                }
            }
            processes.push(command.spawn().unwrap());
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
        let analytics = options.analytics.then(|| urls.pop().unwrap());
        let order = urls.pop().unwrap();
        let product = urls.pop().unwrap();
        let user = urls.pop().unwrap();
        Self {
            backbone,
            user,
            product,
            order,
            analytics,
            http,
            processes,
            _databases: databases,
        }
    }

    /// SIGKILL to the native service at `index` (0 user, 1 product, 2 order,
    /// 3 analytics), which then leaves the list.
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

    /// Every event in the streams so far, oldest first: (type, message id,
    /// traceparent, event).
    pub async fn events(&self) -> Vec<(String, String, String, shopmesh_shared::events::Event)> {
        use shopmesh_shared::nats::headers as h;
        let mut events = Vec::new();
        for message in self.backbone.stored_events().await {
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
