//! The services as operators run them: each binary a child process
//! configured only through its environment, its log written to a file that
//! is printed when the test fails, killed (SIGKILL) when dropped so that a
//! failing test leaks no process.

use shopmesh_shared::testkit::eventually;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const AUTH_KEY: &str = "fault-tests-key-0123456789abcdef01234";
pub const ADMIN_TOKEN: &str = "fault-tests-admin-token";

/// A service binary; they sit beside this crate's `shopmesh` binary
/// (`cargo build --workspace --bins` builds them).
pub fn binary(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_shopmesh")).parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running service binary.
pub struct ServiceProcess {
    /// `user`, `product`, `order` or `analytics`.
    pub name: &'static str,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Starts `shopmesh-<name>` on a free port with exactly `env` (nothing
    /// inherited from the test's environment), logging to a file in
    /// `log_dir`. Returns at once; see [`Self::wait_ready`].
    pub fn spawn(name: &'static str, env: Vec<(String, String)>, log_dir: &Path) -> Self {
        let mut process = Self {
            name,
            url: String::new(),
            env,
            log: log_dir.join(format!("{name}.log")),
            child: None,
        };
        process.start();
        process
    }

    fn start(&mut self) {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("service log file");
        let child = Command::new(binary(&format!("shopmesh-{}", self.name)))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SHOPMESH_HTTP_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the service binary starts");
        self.child = Some(child);
        self.url = format!("http://127.0.0.1:{port}");
    }

    /// Waits until `/readyz` answers 200 (database and NATS reachable).
    pub async fn wait_ready(&self, http: &reqwest::Client) {
        eventually(
            Duration::from_secs(60),
            &format!("{} at {} is ready", self.name, self.url),
            async || ready(http, &self.url).await,
        )
        .await;
    }

    /// SIGKILL: no drain, no final snapshot, no flush.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same binary with the same environment again, on a new
    /// port (the old one may linger).
    pub fn restart(&mut self) {
        self.kill_9();
        self.start();
    }

    fn log_tail(&self, lines: usize) -> String {
        let text =
            String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill_9();
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of {} ({}, {} bytes):\n{}",
                self.name,
                self.log.display(),
                std::fs::metadata(&self.log).map_or(0, |m| m.len()),
                self.log_tail(40)
            );
        }
    }
}

/// The status code of a GET, or `None` when nothing answered.
pub async fn status(http: &reqwest::Client, url: &str) -> Option<u16> {
    http.get(url).send().await.ok().map(|r| r.status().as_u16())
}

/// Whether the service at `url` answers `/readyz` with 200.
pub async fn ready(http: &reqwest::Client, url: &str) -> bool {
    status(http, &format!("{url}/readyz")).await == Some(200)
}

/// The environment of a domain service on `nats_url` and `database_url`:
/// what `Mesh` gives its services (one HTTP worker, a fast outbox poll,
/// cheap password hashing), plus `extra`.
pub fn domain_env(
    nats_url: &str,
    database_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("NATS_URL", nats_url),
        ("DATABASE_URL", database_url),
        ("SHOPMESH_HTTP_WORKERS", "1"),
        ("SHOPMESH_AUTH_KEY", AUTH_KEY),
        ("SHOPMESH_ADMIN_TOKEN", ADMIN_TOKEN),
        ("SHOPMESH_OUTBOX_POLL", "50ms"),
        ("SHOPMESH_PASSWORD_MEMORY_KIB", "1024"),
        ("SHOPMESH_PASSWORD_ITERATIONS", "1"),
        ("SHOPMESH_SHUTDOWN_GRACE", "2s"),
        ("RUST_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (name, value) in extra {
        env.retain(|(k, _)| k != name);
        env.push(((*name).to_owned(), (*value).to_owned()));
    }
    env
}

/// The analytics service's environment on `nats_url`: snapshots taken often
/// (so that a crash falls between snapshots with events applied after the
/// last one), short redelivery waits, plus `extra`.
pub fn analytics_env(nats_url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("NATS_URL", nats_url),
        ("SHOPMESH_HTTP_WORKERS", "1"),
        ("SHOPMESH_ANALYTICS_ARBITERS", "2"),
        ("SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL", "150ms"),
        ("SHOPMESH_ANALYTICS_SNAPSHOT_EVERY", "97"),
        ("SHOPMESH_CONSUMER_ACK_WAIT", "5s"),
        ("SHOPMESH_CONSUMER_NAK_DELAY", "100ms"),
        ("SHOPMESH_SHUTDOWN_GRACE", "2s"),
        ("RUST_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (name, value) in extra {
        env.retain(|(k, _)| k != name);
        env.push(((*name).to_owned(), (*value).to_owned()));
    }
    env
}

/// The user, product and order services, each on its own SQLite file in
/// one temp folder (the order service optionally on another database).
pub struct DomainServices {
    pub user: ServiceProcess,
    pub product: ServiceProcess,
    pub order: ServiceProcess,
    pub dir: tempfile::TempDir,
}

impl DomainServices {
    /// Starts the three on `nats_url` with `extra` settings and waits until
    /// each is ready. `order_database` replaces the order service's SQLite file.
    pub async fn start(
        http: &reqwest::Client,
        nats_url: &str,
        extra: &[(&str, &str)],
        order_database: Option<&str>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the services");
        let sqlite = |service: &str| sqlite_url(dir.path(), service);
        let order_url = order_database.map_or_else(|| sqlite("order"), str::to_owned);
        let spawn = |name, database: &str| {
            ServiceProcess::spawn(name, domain_env(nats_url, database, extra), dir.path())
        };
        let services = Self {
            user: spawn("user", &sqlite("user")),
            product: spawn("product", &sqlite("product")),
            order: spawn("order", &order_url),
            dir,
        };
        for service in services.all() {
            service.wait_ready(http).await;
        }
        services
    }

    pub fn all(&self) -> [&ServiceProcess; 3] {
        [&self.user, &self.product, &self.order]
    }

    /// The SQLite URL of `service`'s database (for reading it back).
    pub fn sqlite_url(&self, service: &str) -> String {
        sqlite_url(self.dir.path(), service)
    }
}

fn sqlite_url(dir: &Path, service: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.join(format!("{service}.db")).display()
    )
}
