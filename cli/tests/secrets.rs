//! Secrets never leak (issue #8): the four service binaries run at
//! `RUST_LOG=debug` (and debug-level spans), their standard output and error
//! captured to files and their spans exported over OTLP to an in-process
//! receiver, while a shopper registers, logs in, makes authorised calls,
//! fails a login, and an admin creates a product and the shopper checks out.
//!
//! Then every log line, every span (name, attributes, events, links, status
//! and resource) and every message the services published is searched for
//! each secret the services were given or handed out: the session-signing key,
//! the admin token, the shopper's password (and the wrong one of the failed
//! login, and a forged token), the issued session token, the NATS password
//! and, on Postgres, the password in the database URL; each also hex- and
//! base64-encoded. None may appear. The scan must also have seen debug log
//! lines from every service, spans from every service, a database statement
//! span and messages, so that it cannot pass by seeing nothing.

mod mesh;

use mesh::{ADMIN_TOKEN, AUTH_KEY, Mesh, NativeOptions, kinds};
use shopmesh_shared::testkit::{DatabaseKind, OtlpReceiver, ReceivedSpan, eventually};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const SERVICES: [&str; 4] = ["user", "product", "order", "analytics"];

/// Values only this run knows, so that a hit cannot be a coincidence.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64, with padding, or the URL-safe alphabet without it.
fn base64(bytes: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url_safe {
            out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    out
}

/// A secret and the forms it could leak in.
struct Secret {
    what: &'static str,
    forms: Vec<String>,
}

impl Secret {
    fn new(what: &'static str, value: &str) -> Self {
        let bytes = value.as_bytes();
        Self {
            what,
            forms: vec![
                value.to_owned(),
                hex(bytes),
                base64(bytes, false),
                base64(bytes, true),
            ],
        }
    }

    /// The form of this secret that `text` contains, if any.
    fn found_in(&self, text: &str) -> Option<&str> {
        self.forms
            .iter()
            .find(|form| text.contains(form.as_str()))
            .map(String::as_str)
    }
}

/// `line` without ANSI colour sequences (`ESC [ .. letter`), which the text
/// log format puts between a field's name and its value.
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Everything a span carries, as text.
fn span_text(span: &ReceivedSpan) -> String {
    format!("{:?} {:?}", span.span, span.resource)
}

async fn shopping_at_debug_level_leaks_no_secret(kind: DatabaseKind) {
    let receiver = OtlpReceiver::start().await;
    let logs = tempfile::tempdir().unwrap();
    let nats_password = unique("nats-password");
    let database_password = unique("database-password");
    let options = NativeOptions {
        analytics: true,
        env: vec![
            ("RUST_LOG".into(), "debug".into()),
            ("SHOPMESH_TRACE_FILTER".into(), "debug".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                receiver.endpoint.clone(),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
        ],
        log_dir: Some(logs.path().to_owned()),
        nats_credentials: Some(("shopmesh".into(), nats_password.clone())),
        nats_credentials_in_url: true,
        database_password: Some(database_password.clone()),
    };
    let mut mesh = Mesh::start_native_with(kind, options).await;
    let analytics = mesh.analytics.clone().unwrap();

    let password = unique("shopper-password");
    let wrong_password = unique("wrong-password");
    let forged_token = unique("forged-token");
    let email = "careful.shopper@example.com";
    let http = &mesh.http;

    let registered = http
        .post(format!("{}/users", mesh.user))
        .json(
            &serde_json::json!({ "email": email, "name": "Careful Shopper", "password": password }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let user_id = registered.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = http
        .post(format!("{}/sessions", mesh.user))
        .json(&serde_json::json!({ "email": email, "password": wrong_password }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the failed login");
    let session: serde_json::Value = http
        .post(format!("{}/sessions", mesh.user))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap().to_owned();
    let me = http
        .get(format!("{}/users/me", mesh.user))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let forged = http
        .get(format!("{}/users/me", mesh.user))
        .bearer_auth(&forged_token)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "a forged token is refused");
    let not_admin = http
        .post(format!("{}/products", mesh.product))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "Nope", "category": "books", "price_cents": 1, "stock": 1 }))
        .send()
        .await
        .unwrap();
    assert!(
        not_admin.status() == 401 || not_admin.status() == 403,
        "a shopper is no admin: {}",
        not_admin.status()
    );
    let product = mesh.product("Careful Dune", "books", 1_299, 10).await;
    let viewed = http
        .get(format!("{}/products/{product}", mesh.product))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(viewed.status(), 200);
    assert_eq!(mesh.add_to_cart(&token, &product, 1).await.status(), 201);
    assert_eq!(mesh.checkout(&token).await.status(), 201);
    let orders = mesh
        .get_json(&format!("{}/orders", mesh.order), Some(&token))
        .await;
    assert_eq!(orders["items"].as_array().map(Vec::len), Some(1));
    eventually(WAIT, "analytics applied the order", async || {
        let url = format!("{analytics}/users/{user_id}/profile");
        match http.get(&url).send().await {
            Ok(r) if r.status() == 200 => r
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|p| p["counts"]["order.placed"] == 1),
            _ => false,
        }
    })
    .await;
    eventually(WAIT, "spans of every service exported", async || {
        let services: BTreeSet<String> = receiver
            .spans()
            .into_iter()
            .map(|s| s.service_name)
            .collect();
        SERVICES.iter().all(|s| services.contains(*s))
    })
    .await;
    let mut messages = Vec::new();
    for message in mesh.backbone.stored_events().await {
        messages.push(format!(
            "{:?} {}",
            message.headers,
            String::from_utf8_lossy(&message.payload)
        ));
    }
    // Shutdown logs and flushes the rest.
    for status in mesh.terminate() {
        assert!(status.success(), "{kind:?}: a service exited with {status}");
    }

    let mut secrets = vec![
        Secret::new("SHOPMESH_AUTH_KEY", AUTH_KEY),
        Secret::new("SHOPMESH_ADMIN_TOKEN", ADMIN_TOKEN),
        Secret::new("the shopper's password", &password),
        Secret::new("the failed login's password", &wrong_password),
        Secret::new("a forged bearer token", &forged_token),
        Secret::new("the issued session token", &token),
        Secret::new("NATS_PASSWORD", &nats_password),
    ];
    if kind == DatabaseKind::Postgres {
        secrets.push(Secret::new("the DATABASE_URL password", &database_password));
    }
    let mut leaks = Vec::new();

    // Every log line of every service.
    let mut debug_lines = BTreeSet::new();
    let mut lines = 0;
    for service in SERVICES {
        for stream in ["stdout", "stderr"] {
            let path = logs.path().join(format!("{service}.{stream}"));
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().map(without_colours) {
                lines += 1;
                if line.contains(" DEBUG ") {
                    debug_lines.insert(service);
                }
                for secret in &secrets {
                    if let Some(form) = secret.found_in(&line) {
                        leaks.push(format!(
                            "{} ({form}) in {}: {line}",
                            secret.what,
                            file_name(&path)
                        ));
                    }
                }
            }
        }
    }
    // Every span: its name, attributes, events, links, status, resource.
    let spans = receiver.spans();
    for span in &spans {
        let text = span_text(span);
        for secret in &secrets {
            if let Some(form) = secret.found_in(&text) {
                leaks.push(format!(
                    "{} ({form}) in a span of {}: {text}",
                    secret.what, span.service_name
                ));
            }
        }
    }
    // Every message the services published.
    for message in &messages {
        for secret in &secrets {
            if let Some(form) = secret.found_in(message) {
                leaks.push(format!("{} ({form}) in a message: {message}", secret.what));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{kind:?}: secrets leaked:\n{}",
        leaks.join("\n")
    );

    // The scan saw what it should have: debug logs of every service, spans
    // of every service with events in them, the login and the statements.
    assert_eq!(
        debug_lines,
        BTreeSet::from(SERVICES),
        "{kind:?}: debug lines from every service ({lines} lines read)"
    );
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
    assert_eq!(services, BTreeSet::from(SERVICES), "{kind:?}");
    assert!(
        spans.iter().any(|s| !s.span.events.is_empty()),
        "span events seen"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.service_name == "user" && s.span.name == "POST /sessions"),
        "the logins' spans seen"
    );
    assert!(
        spans.iter().any(|s| s.attribute("db.query.text").is_some()),
        "database statement spans seen"
    );
    assert!(
        messages.len() >= 5,
        "{kind:?}: the published messages seen: {}",
        messages.len()
    );
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_spans_or_messages() {
    assert_eq!(base64(b"hunter2", false), "aHVudGVyMg==");
    assert_eq!(base64(b"hunter2?>", true), "aHVudGVyMj8-");
    assert_eq!(
        without_colours("\u{1b}[3mpassword\u{1b}[0m\u{1b}[2m=\u{1b}[0mx"),
        "password=x"
    );
    for kind in kinds() {
        shopping_at_debug_level_leaks_no_secret(kind).await;
    }
}
