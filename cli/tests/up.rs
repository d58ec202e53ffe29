//! `shopmesh up` as a newcomer runs it: the platform comes up, a checkout goes
//! through, Ctrl-C stops every process, and a second run resumes the data.

use serde_json::json;
use shopmesh_shared::testkit::find_nats_server;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Four consecutive free ports: NATS, then user, product, order. They are
/// taken below the kernel's ephemeral range (32768 and up), where every other
/// test's port-0 binds land, so a parallel test cannot grab one between this
/// check and `up`'s own bind.
fn free_ports() -> u16 {
    let seed = std::process::id() as u16;
    for attempt in 0..500u16 {
        let base = 20_000 + (seed.wrapping_add(attempt.wrapping_mul(7_919)) % 12_000);
        if (0..4).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no four consecutive free ports")
}

struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn up(data: &std::path::Path, base: u16) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shopmesh"))
        .args(["up", "--catalogue", "12", "--status-every", "1"])
        .arg("--data-dir")
        .arg(data)
        .args(["--nats-port", &base.to_string()])
        .args(["--http-base-port", &(base + 1).to_string()])
        .env("NATS_SERVER_BIN", find_nats_server().unwrap())
        .env("RUST_LOG", "warn")
        // Cheap hashing: the production cost is tested in the user service.
        .env("SHOPMESH_PASSWORD_MEMORY_KIB", "1024")
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
    /// Waits for a line containing `text`; the lines seen until then.
    fn wait_for(&self, text: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(90)) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no line with {text:?}; saw {seen:#?}"),
            }
        }
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

#[tokio::test]
async fn up_serves_a_checkout_stops_cleanly_and_resumes() {
    let data = tempfile::tempdir().unwrap();
    let base = free_ports();
    let (user, product, order) = (
        format!("http://127.0.0.1:{}", base + 1),
        format!("http://127.0.0.1:{}", base + 2),
        format!("http://127.0.0.1:{}", base + 3),
    );
    let http = reqwest::Client::new();

    let platform = up(data.path(), base);
    platform.wait_for("ready; Ctrl-C stops everything");
    let created = http
        .post(format!("{user}/users"))
        .json(&json!({ "email": "up@example.com", "name": "Up", "password": "resume-me-please" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
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
    platform.wait_for("events");
    let status = platform.interrupt();
    assert!(status.success(), "{status}");
    for port in base..base + 4 {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still held: a process was left behind"
        );
    }

    // Second run: same data, same keys, nothing seeded twice. (A fresh
    // client: pooled connections to the stopped processes are dead.)
    let http = reqwest::Client::new();
    let platform = up(data.path(), base);
    platform.wait_for("ready; Ctrl-C stops everything");
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
    assert!(platform.interrupt().success());
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
}
