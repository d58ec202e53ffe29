//! `shopmesh up` as a newcomer runs it: the platform (NATS, user, product,
//! order, analytics, a background load) comes up, a checkout goes through,
//! analytics recommends to that shopper and counts the load's events, Ctrl-C
//! stops every process, and a second run resumes the data. Its NATS enforces
//! the users and permissions of deploy/nats/nats.conf: no client gets in
//! without credentials, each service's credentials publish its own subjects
//! only, and an operator tails with the admin user's. Also the ways out that
//! are not Ctrl-C: a taken port, a stream name its NATS users cannot reach, a
//! service that fails to start, a signal while starting; none may leave a
//! process behind.

use futures::StreamExt;
use serde_json::json;
use shopmesh_shared::testkit::{eventually, find_nats_server};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Ports `up` takes: NATS, user, product, order, analytics, NATS monitoring.
const PORTS: u16 = 6;

/// Six consecutive free ports (see [`PORTS`]). They are taken below the
/// kernel's ephemeral range (32768 and up), where every other test's port-0
/// binds land, so a parallel test cannot grab one between this check and
/// `up`'s own bind. Blocks of six, so that the tests of this file (one
/// process each, consecutive pids) do not overlap.
fn free_ports() -> u16 {
    let seed = std::process::id();
    for attempt in 0..500u32 {
        let base = 20_000 + PORTS * ((seed + attempt * 7_919) % 2_000) as u16;
        if (0..PORTS).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {PORTS} consecutive free ports")
}

/// Every child of `up` inherits its environment, so this variable, set on
/// `up` alone, marks the processes of one test run wherever they end up
/// (a child whose parent died is re-parented, but keeps its environment).
const MARK: &str = "SHOPMESH_UP_TEST_MARK";

/// Whether `pid` still runs (a zombie waiting for whoever adopted it to reap
/// it has ended).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // "pid (comm) state ...": the state follows the last ')'.
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// Processes still running with `mark` in their environment.
fn marked_processes(mark: &str) -> Vec<String> {
    let needle = format!("{MARK}={mark}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // Processes of other users are unreadable: they are not ours.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let ours = environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes());
        if ours && pid.parse().is_ok_and(running) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

fn up_command(data: &Path, base: u16, mark: &str) -> Command {
    up_command_with_load(data, base, mark, "20")
}

/// `up` with the background load at `rate` actions/s ("0": none).
fn up_command_with_load(data: &Path, base: u16, mark: &str, rate: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopmesh"));
    command
        .args(["up", "--catalogue", "12", "--status-every", "1"])
        .args(["--load-users", "4", "--load-rate", rate])
        .arg("--data-dir")
        .arg(data)
        .args(["--nats-port", &base.to_string()])
        .args(["--http-base-port", &(base + 1).to_string()])
        .args(["--nats-monitor-port", &(base + 5).to_string()])
        .env("NATS_SERVER_BIN", find_nats_server().unwrap())
        // Info: the logs are checked for what a reader of the files sees.
        .env("RUST_LOG", "info")
        .env(MARK, mark)
        // Cheap hashing: the production cost is tested in the user service.
        .env("SHOPMESH_PASSWORD_MEMORY_KIB", "1024");
    command
}

struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn up(data: &Path, base: u16, mark: &str) -> Up {
    up_with_load(data, base, mark, "20")
}

fn up_with_load(data: &Path, base: u16, mark: &str, rate: &str) -> Up {
    let mut child = up_command_with_load(data, base, mark, rate)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Up { child, lines }
}

impl Up {
    /// Waits for a line for which `found` holds; the lines seen until then.
    fn wait_until(&self, what: &str, found: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(90)) {
                Ok(line) => {
                    let done = found(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no line with {what}; saw {seen:#?}"),
            }
        }
    }

    fn wait_for(&self, text: &str) -> Vec<String> {
        self.wait_until(text, |line| line.contains(text))
    }

    /// Ctrl-C, then the exit status.
    fn interrupt(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

/// A test that fails half-way still stops its `up` (which stops its
/// children), rather than leaving a platform running.
impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// The pids `up` printed (`processes: nats-server=1 user=2 ...`).
fn printed_pids(lines: &[String]) -> Vec<(String, u32)> {
    let line = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("processes: "))
        .expect("a processes line");
    line.split_whitespace()
        .map(|pair| {
            let (name, pid) = pair.split_once('=').unwrap();
            (name.to_owned(), pid.parse().unwrap())
        })
        .collect()
}

/// Nothing of a stopped `up` is left: no printed pid alive, no marked
/// process, every port free.
fn assert_all_gone(pids: &[(String, u32)], mark: &str, base: u16) {
    for (name, pid) in pids {
        assert!(!running(*pid), "{name} (pid {pid}) survived");
    }
    let left = marked_processes(mark);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    for port in base..base + PORTS {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still held: a process was left behind"
        );
    }
}

async fn login(http: &reqwest::Client, user_url: &str) -> String {
    let session: serde_json::Value = http
        .post(format!("{user_url}/sessions"))
        .json(&json!({ "email": "up@example.com", "password": "resume-me-please" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["token"].as_str().expect("logged in").to_owned()
}

async fn handled(http: &reqwest::Client, analytics: &str) -> u64 {
    let stats: serde_json::Value = http
        .get(format!("{analytics}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["consumer"]["handled"]
        .as_u64()
        .expect("consumer.handled")
}

#[tokio::test]
async fn up_serves_a_checkout_recommends_stops_cleanly_and_resumes() {
    let data = tempfile::tempdir().unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let base = free_ports();
    let [user, product, order, analytics] =
        [1, 2, 3, 4].map(|i| format!("http://127.0.0.1:{}", base + i));
    let http = reqwest::Client::new();

    let platform = up(data.path(), base, &mark);
    let printed = platform.wait_for("ready; Ctrl-C stops everything");
    let pids = printed_pids(&printed);
    let names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["nats-server", "user", "product", "order", "analytics"]
    );
    let text = printed.join("\n");
    for url in [
        format!("{analytics}/recommendations/{{user_id}}"),
        format!("{analytics}/trending"),
    ] {
        assert!(text.contains(&url), "{url} not printed:\n{text}");
    }
    assert!(text.contains("4 background shoppers"), "{text}");
    for service in [&user, &product, &order, &analytics] {
        let ready = http.get(format!("{service}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{service}");
    }

    let created = http
        .post(format!("{user}/users"))
        .json(&json!({ "email": "up@example.com", "name": "Up", "password": "resume-me-please" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let user_id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = login(&http, &user).await;
    let catalogue: serde_json::Value = http
        .get(format!("{product}/products?per_page=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(catalogue["total"], 12, "the catalogue was seeded");
    let first = catalogue["items"][0]["id"].as_str().unwrap().to_owned();
    let added = http
        .post(format!("{order}/cart/items"))
        .bearer_auth(&token)
        .json(&json!({ "product_id": first, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let placed = http
        .post(format!("{order}/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let placed: serde_json::Value = placed.json().await.unwrap();

    // Analytics saw the purchase and recommends something else to this shopper.
    let recommendations = format!("{analytics}/recommendations/{user_id}");
    eventually(
        Duration::from_secs(60),
        "recommendations for the shopper who checked out",
        async || {
            let Ok(response) = http.get(&recommendations).send().await else {
                return false;
            };
            if response.status() != 200 {
                return false;
            }
            let body: serde_json::Value = response.json().await.unwrap();
            body["items"].as_array().is_some_and(|items| {
                !items.is_empty() && items.iter().all(|i| i["product_id"] != first.as_str())
            })
        },
    )
    .await;
    // From here on only the background load makes events.
    let before = handled(&http, &analytics).await;
    eventually(
        Duration::from_secs(60),
        "the background load's events reaching analytics",
        async || handled(&http, &analytics).await > before,
    )
    .await;
    // The status line shows the lag, the p99 and the load's rate.
    let lines = platform.wait_until("a status line with load actions", |line| {
        line.contains("consumer lag ")
            && line.contains("p99")
            && line
                .split_once("| load ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|rate| rate.parse::<f64>().ok())
                .is_some_and(|rate| rate > 0.0)
    });
    let status = lines.last().unwrap();
    assert!(!status.contains("consumer lag -"), "{status}");

    let exit = platform.interrupt();
    assert!(exit.success(), "{exit}");
    assert_all_gone(&pids, &mark, base);

    // Second run: same data, same keys and NATS passwords, nothing seeded
    // twice. (A fresh client: pooled connections to the stopped processes
    // are dead.)
    let keys = std::fs::read_to_string(data.path().join("secrets.env")).unwrap();
    let http = reqwest::Client::new();
    let platform = up(data.path(), base, &mark);
    let pids = printed_pids(&platform.wait_for("ready; Ctrl-C stops everything"));
    assert_eq!(
        std::fs::read_to_string(data.path().join("secrets.env")).unwrap(),
        keys
    );
    let token = login(&http, &user).await;
    let orders: serde_json::Value = http
        .get(format!("{order}/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["items"][0]["id"], placed["id"]);
    let catalogue: serde_json::Value = http
        .get(format!("{product}/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(catalogue["total"], 12);
    // Analytics resumed from its snapshots and the stream: it still knows
    // the shopper.
    let again = http.get(&recommendations).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(platform.interrupt().success());
    assert_all_gone(&pids, &mark, base);
    // Log files are for reading and grepping: no terminal colour codes.
    for service in ["user", "product", "order", "analytics"] {
        let log = std::fs::read_to_string(data.path().join(format!("logs/{service}.log"))).unwrap();
        assert!(log.contains("INFO"), "{service} logged nothing at info");
        assert!(
            !log.contains('\u{1b}'),
            "{service} log has escape codes: {:?}",
            log.chars().take(200).collect::<String>()
        );
    }
}

/// The NATS users of deploy/nats/nats.conf and their password variables.
const NATS_USERS: [(&str, &str); 6] = [
    ("user", "SHOPMESH_NATS_USER_PASSWORD"),
    ("product", "SHOPMESH_NATS_PRODUCT_PASSWORD"),
    ("order", "SHOPMESH_NATS_ORDER_PASSWORD"),
    ("analytics", "SHOPMESH_NATS_ANALYTICS_PASSWORD"),
    ("load", "SHOPMESH_NATS_LOAD_PASSWORD"),
    ("admin", "SHOPMESH_NATS_ADMIN_PASSWORD"),
];

/// The variables of `<data>/secrets.env`.
fn secrets(data: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(data.join("secrets.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A NATS client of `user` whose server errors (permission violations) are
/// collected, so that the test can wait for the one it provoked.
struct Client {
    user: &'static str,
    nats: async_nats::Client,
    errors: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Client {
    async fn connect(url: &str, user: &'static str, password: &str) -> Self {
        let (tx, errors) = tokio::sync::mpsc::unbounded_channel();
        let nats = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password.into())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        let _ = tx.send(error.to_string());
                    }
                }
            })
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("{user} cannot connect with its secrets.env password: {e}"));
        Self { user, nats, errors }
    }

    /// Waits for the server's "permissions violation for <action> to <subject>".
    async fn expect_violation(&mut self, action: &str, subject: &str) {
        let wanted = format!("permissions violation for {action} to \"{subject}\"");
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(error) = self.errors.recv().await {
                if error.to_lowercase().contains(&wanted) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            found,
            Ok(true),
            "{} was not refused the {action} to {subject}",
            self.user
        );
    }
}

/// The NATS connections `up`'s server has, as (connection name, user),
/// from its monitoring endpoint.
async fn connections(http: &reqwest::Client, monitor: &str) -> Vec<(String, String)> {
    let connz: serde_json::Value = http
        .get(format!("{monitor}/connz?auth=true&limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
            (text("name"), text("authorized_user"))
        })
        .collect()
}

/// `shopmesh tail` against `up`'s NATS, with `credentials` (user, password)
/// in its environment only.
fn tail(nats_url: &str, credentials: Option<(&str, &str)>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopmesh"));
    command
        .arg("tail")
        .args(args)
        .env("NATS_URL", nats_url)
        .env("RUST_LOG", "warn")
        .env_remove("NATS_USER")
        .env_remove("NATS_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((user, password)) = credentials {
        command
            .env("NATS_USER", user)
            .env("NATS_PASSWORD", password);
    }
    command
}

#[tokio::test]
async fn up_runs_nats_with_a_user_per_service_confined_to_its_subjects() {
    let data = tempfile::tempdir().unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let base = free_ports();
    let nats_url = format!("nats://127.0.0.1:{base}");
    let monitor = format!("http://127.0.0.1:{}", base + 5);
    let http = reqwest::Client::new();
    let platform = up_with_load(data.path(), base, &mark, "0");
    let printed = platform.wait_for("ready; Ctrl-C stops everything");
    let pids = printed_pids(&printed);

    // One password per user, owner-only, never printed nor on a command
    // line; each service has its own in its environment and no other's.
    let secrets = secrets(data.path());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("secrets.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "secrets.env mode {mode:o}");
    }
    let password = |user: &str| -> String {
        let variable = NATS_USERS.iter().find(|(u, _)| *u == user).unwrap().1;
        secrets
            .get(variable)
            .unwrap_or_else(|| panic!("secrets.env has no {variable}"))
            .clone()
    };
    let passwords: Vec<String> = NATS_USERS.iter().map(|(u, _)| password(u)).collect();
    let distinct: std::collections::BTreeSet<&String> = passwords.iter().collect();
    assert_eq!(distinct.len(), NATS_USERS.len(), "one password per user");
    let printed_text = printed.join("\n");
    assert!(
        printed_text.contains("NATS_USER=admin NATS_PASSWORD=\"$SHOPMESH_NATS_ADMIN_PASSWORD\""),
        "how to tail is not printed:\n{printed_text}"
    );
    for (name, pid) in &pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let environ: Vec<String> = environ
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        for (user, variable) in NATS_USERS {
            let secret = password(user);
            assert!(!printed_text.contains(&secret), "{user}'s password printed");
            assert!(
                !cmdline.contains(&secret),
                "{user}'s password on {name}'s command line"
            );
            let held = environ.iter().any(|v| v.contains(&secret));
            if name == "nats-server" {
                assert!(environ.contains(&format!("{variable}={secret}")));
            } else {
                assert_eq!(
                    held,
                    user == name,
                    "{name}'s environment and {user}'s password"
                );
            }
        }
        if name != "nats-server" {
            assert!(environ.contains(&format!("NATS_USER={name}")), "{name}");
            assert!(environ.contains(&format!("NATS_PASSWORD={}", password(name))));
        }
    }

    // (a) Nobody gets in without a user and its password.
    let refused = async_nats::connect(nats_url.as_str()).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation,
        "{refused}"
    );
    let refused = async_nats::ConnectOptions::new()
        .user_and_password("admin".into(), password("product"))
        .connect(nats_url.as_str())
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation,
        "{refused}"
    );
    let anonymous_tail = tail(&nats_url, None, &["--count", "1"]).output().unwrap();
    assert!(!anonymous_tail.status.success());
    assert!(
        String::from_utf8_lossy(&anonymous_tail.stderr).contains("authorization violation"),
        "{}",
        String::from_utf8_lossy(&anonymous_tail.stderr)
    );

    // Every connection is someone's: each service as itself, the status
    // line as `load`.
    eventually(
        Duration::from_secs(30),
        "each service and the status line connected as their own NATS users",
        async || {
            let connections = connections(&http, &monitor).await;
            let has =
                |name: &str, user: &str| connections.iter().any(|(n, u)| n == name && u == user);
            assert!(
                connections
                    .iter()
                    .all(|(name, user)| NATS_USERS.iter().any(|(u, _)| u == user)
                        && (!NATS_USERS.iter().any(|(u, _)| u == name) || name == user)),
                "{connections:?}"
            );
            ["user", "product", "order", "analytics"]
                .iter()
                .all(|service| has(service, service))
                && has("shopmesh-up", "load")
        },
    )
    .await;

    // (b) Each service's credentials publish its own subjects only. The
    // operator listens to both streams' subjects: a refused message, sent
    // first on the same connection, would reach it before the allowed one.
    let admin = Client::connect(&nats_url, "admin", &password("admin")).await;
    let mut heard = futures::stream::select(
        admin.nats.subscribe("shopmesh.events.>").await.unwrap(),
        admin.nats.subscribe("shopmesh.deadletter.>").await.unwrap(),
    );
    // flush() only empties the client's buffer; a request answered by the
    // server proves it has read the subscriptions sent before it.
    admin.nats.request("$JS.API.INFO", "".into()).await.unwrap();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let cases = [
        (
            "user",
            "shopmesh.events.user.allowed",
            "shopmesh.events.order.denied",
        ),
        (
            "product",
            "shopmesh.events.product.allowed",
            "shopmesh.events.order.denied",
        ),
        (
            "order",
            "shopmesh.events.order.allowed",
            "shopmesh.events.product.denied",
        ),
        (
            "analytics",
            "shopmesh.deadletter.analytics",
            "shopmesh.events.user.denied",
        ),
    ];
    for (user, allowed, denied) in cases {
        // The nonce goes into the action token: the partition token must
        // name a partition for a stream to hold the event.
        let allowed = if user == "analytics" {
            allowed.to_owned()
        } else {
            format!("{allowed}_{nonce}.5")
        };
        let denied = format!("{denied}.{nonce}");
        let payload = format!("{user}-{nonce}");
        let mut client = Client::connect(&nats_url, user, &password(user)).await;
        client
            .nats
            .publish(denied.clone(), payload.clone().into())
            .await
            .unwrap();
        client.nats.flush().await.unwrap();
        client.expect_violation("publish", &denied).await;
        // Nor may it listen to the other services' events.
        let _listening = client.nats.subscribe("shopmesh.events.>").await.unwrap();
        client.nats.flush().await.unwrap();
        client
            .expect_violation("subscription", "shopmesh.events.>")
            .await;
        // Its own subject works: the stream stores it.
        let js = async_nats::jetstream::new(client.nats.clone());
        js.publish(allowed.clone(), payload.clone().into())
            .await
            .unwrap()
            .await
            .unwrap_or_else(|e| panic!("{user} cannot publish {allowed}: {e}"));
        let mut before = Vec::new();
        let arrived = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(message) = heard.next().await {
                if message.payload == payload.as_bytes() {
                    if message.subject.as_str() == allowed {
                        return true;
                    }
                    before.push(message.subject.to_string());
                }
            }
            false
        })
        .await;
        assert_eq!(arrived, Ok(true), "{user}'s {allowed} never reached admin");
        // Only the refused subject counts: analytics dead-letters the allowed
        // event (its body is no event), and `select` may hand that copy
        // over first when both subscriptions have a message waiting.
        assert!(
            !before.contains(&denied),
            "{user} got {denied} through (before {allowed}: {before:?})"
        );
    }

    // The operator tails with the admin user: from the stream's start ...
    let output = tail(
        &nats_url,
        Some(("admin", &password("admin"))),
        &[
            &format!("shopmesh.events.product.allowed_{nonce}.5"),
            "--history",
            "--count",
            "1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(output.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        line["subject"],
        format!("shopmesh.events.product.allowed_{nonce}.5")
    );
    // ... and live (a subscription of its own, which it may make).
    let live_subject = format!("shopmesh.events.user.live.{nonce}");
    let child = tail(
        &nats_url,
        Some(("admin", &password("admin"))),
        &[&live_subject, "--count", "1"],
    )
    .spawn()
    .unwrap();
    let user = Client::connect(&nats_url, "user", &password("user")).await;
    let child = std::sync::Mutex::new(child);
    // The subscription starts a moment after the process: publish until it
    // has printed one.
    eventually(
        Duration::from_secs(30),
        "a live shopmesh tail as admin printed an event",
        async || {
            user.nats
                .publish(live_subject.clone(), "live".into())
                .await
                .unwrap();
            user.nats.flush().await.unwrap();
            child.lock().unwrap().try_wait().unwrap().is_some()
        },
    )
    .await;
    let output = child.into_inner().unwrap().wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&live_subject),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // The status line reads the stream as `load`.
    platform.wait_until("a status line", |line| line.starts_with("events "));
    assert!(platform.interrupt().success());
    assert_all_gone(&pids, &mark, base);
}

#[test]
fn a_taken_port_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_shopmesh"))
        .args(["up", "--nats-port", &port.to_string()])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("port {port} (for NATS) is already taken")),
        "{stderr}"
    );
    assert!(stderr.contains("--nats-port"), "{stderr}");
}

#[test]
fn a_taken_analytics_port_is_named_and_nothing_is_left() {
    let base = free_ports();
    let _taken = TcpListener::bind(("127.0.0.1", base + 4)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let output = up_command(data.path(), base, &mark).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "port {} (for analytics) is already taken",
            base + 4
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--http-base-port"), "{stderr}");
    let left = marked_processes(&mark);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

/// `up`'s NATS grants the default snapshot bucket only: a renamed bucket is
/// refused with its variable before anything starts, rather than analytics
/// being refused its first snapshot.
#[test]
fn a_bucket_its_nats_users_cannot_reach_is_refused_before_starting() {
    let base = free_ports();
    let data = tempfile::tempdir().unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let output = up_command(data.path(), base, &mark)
        .env("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET", "other-bucket")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET=other-bucket")
            && stderr.contains("deploy/nats/nats.conf"),
        "{stderr}"
    );
    assert!(
        !data.path().join("logs/nats.log").exists(),
        "NATS was started"
    );
    assert_all_gone(&[], &mark, base);
}

/// The orphan this guards against: analytics fails after NATS and three
/// services are up; `up` must stop all of them, not just exit.
#[test]
fn a_service_that_fails_to_start_leaves_no_process() {
    let base = free_ports();
    let data = tempfile::tempdir().unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let output = up_command(data.path(), base, &mark)
        // A setting analytics refuses, and only analytics reads.
        .env("SHOPMESH_ANALYTICS_MAILBOX", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("analytics exited"), "{stderr}");
    assert!(stderr.contains("SHOPMESH_ANALYTICS_MAILBOX"), "{stderr}");
    // The others had started (their logs exist) and were stopped.
    for service in ["nats", "user", "product", "order"] {
        assert!(
            data.path().join(format!("logs/{service}.log")).exists(),
            "{service} never started"
        );
    }
    assert_all_gone(&[], &mark, base);
}

/// A Ctrl-C while the services are still starting stops the ones already
/// running (the signal used to kill `up` alone and orphan them).
#[test]
fn a_signal_while_starting_leaves_no_process() {
    let base = free_ports();
    let data = tempfile::tempdir().unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let mut child = up_command(data.path(), base, &mark)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The user service is spawned once NATS listens: from then on there is
    // something to orphan.
    let user_log = data.path().join("logs/user.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !user_log.exists() {
        assert!(child.try_wait().unwrap().is_none(), "up ended early");
        assert!(
            std::time::Instant::now() < deadline,
            "up never started the user service"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit}");
    assert_all_gone(&[], &mark, base);
}

/// `kill -9` of `up` runs none of its code, yet its children stop too: the
/// kernel sends each SIGTERM when `up` dies (they drain and exit as on
/// Ctrl-C), instead of leaving them holding the ports and the data folder.
#[tokio::test]
async fn killing_up_outright_leaves_no_process() {
    let base = free_ports();
    let data = tempfile::tempdir().unwrap();
    let mark = uuid::Uuid::new_v4().to_string();
    let mut platform = up_with_load(data.path(), base, &mark, "0");
    let pids = printed_pids(&platform.wait_for("ready; Ctrl-C stops everything"));
    assert_eq!(pids.len(), 5, "{pids:?}");
    Command::new("kill")
        .args(["-KILL", &platform.child.id().to_string()])
        .status()
        .unwrap();
    platform.child.wait().unwrap();
    eventually(
        Duration::from_secs(30),
        "every child of the killed up ends",
        async || pids.iter().all(|(_, pid)| !running(*pid)),
    )
    .await;
    assert_all_gone(&pids, &mark, base);
}
