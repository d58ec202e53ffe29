//! `shopmesh up` as a newcomer runs it: the platform (NATS, user, product,
//! order, analytics, a background load) comes up, a checkout goes through,
//! analytics recommends to that shopper and counts the load's events, Ctrl-C
//! stops every process, and a second run resumes the data. Also the ways out
//! that are not Ctrl-C: a taken port, a service that fails to start, a
//! signal while starting; none may leave a process behind.

use serde_json::json;
use shopmesh_shared::testkit::{eventually, find_nats_server};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Five consecutive free ports: NATS, then user, product, order, analytics.
/// They are taken below the kernel's ephemeral range (32768 and up), where
/// every other test's port-0 binds land, so a parallel test cannot grab one
/// between this check and `up`'s own bind. Blocks of five, so that the
/// tests of this file (one process each, consecutive pids) do not overlap.
fn free_ports() -> u16 {
    let seed = std::process::id();
    for attempt in 0..500u32 {
        let base = 20_000 + 5 * ((seed + attempt * 7_919) % 2_400) as u16;
        if (0..5).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no five consecutive free ports")
}

/// Every child of `up` inherits its environment, so this variable, set on
/// `up` alone, marks the processes of one test run wherever they end up
/// (a child whose parent died is re-parented, but keeps its environment).
const MARK: &str = "SHOPMESH_UP_TEST_MARK";

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
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_shopmesh"));
    command
        .args(["up", "--catalogue", "12", "--status-every", "1"])
        .args(["--load-users", "4", "--load-rate", "20"])
        .arg("--data-dir")
        .arg(data)
        .args(["--nats-port", &base.to_string()])
        .args(["--http-base-port", &(base + 1).to_string()])
        .env("NATS_SERVER_BIN", find_nats_server().unwrap())
        .env("RUST_LOG", "warn")
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
    let mut child = up_command(data, base, mark)
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
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{name} (pid {pid}) survived"
        );
    }
    let left = marked_processes(mark);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    for port in base..base + 5 {
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

    // Second run: same data, same keys, nothing seeded twice. (A fresh
    // client: pooled connections to the stopped processes are dead.)
    let http = reqwest::Client::new();
    let platform = up(data.path(), base, &mark);
    let pids = printed_pids(&platform.wait_for("ready; Ctrl-C stops everything"));
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
