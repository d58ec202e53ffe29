//! The platform a bench measures: its own nats-server (found like `up`
//! finds it) and the four service binaries on SQLite in one folder, started
//! and stopped with `up`'s process guard, and a seeded catalogue. Every
//! process is registered in the caller's [`Platform`] as soon as it is
//! spawned, so whatever ends the bench stops them.
//!
//! Unlike `up`, its nats-server has no users: the bench publishes synthetic
//! events on every subject and creates its baseline's stream, which no
//! service's user may do, and nothing outside this machine's loopback can
//! reach it. Its keys (token signing key, admin token) are new on every run.

use crate::commands::up::SERVICES;
use crate::commands::up::processes::{
    Platform, ensure_free, log_file, log_path, service_ports_and_binaries, stop_with_parent,
    wait_listening, wait_ready,
};
use anyhow::Context;
use shopmesh_shared::settings::{BackboneSettings, Env};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Credentials for another NATS, which children must not inherit.
const NATS_CREDENTIALS: [&str; 2] = ["NATS_USER", "NATS_PASSWORD"];

/// Where the running services answer.
#[derive(Debug, Clone)]
pub struct Urls {
    pub user: String,
    pub product: String,
    pub order: String,
    pub analytics: String,
}

/// What a started platform offers the measurements.
pub struct Started {
    pub urls: Urls,
    /// The environment's backbone settings, pointed at the bench's NATS.
    pub backbone: BackboneSettings,
    /// The admin token the product service accepts.
    pub admin_token: String,
}

pub struct Ports {
    pub nats: u16,
    pub http_base: u16,
}

/// Starts nats-server and the services in `dir`, in `up`'s order, then
/// seeds `catalogue` products.
pub async fn start(
    env: &Env,
    dir: &Path,
    ports: &Ports,
    catalogue: usize,
    platform: &mut Platform,
) -> anyhow::Result<Started> {
    std::fs::create_dir_all(dir.join("logs"))?;
    std::fs::create_dir_all(dir.join("nats"))?;
    let random = || uuid::Uuid::new_v4().simple().to_string();
    let admin_token = format!("admin-{}", random());
    let keys = [
        ("SHOPMESH_AUTH_KEY", format!("{}{}", random(), random())),
        ("SHOPMESH_ADMIN_TOKEN", admin_token.clone()),
    ];
    let nats_bin = env
        .get("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"));
    let nats_url = format!("nats://127.0.0.1:{}", ports.nats);
    // The environment's backbone settings (stream names, partitions) with
    // the bench's NATS, which asks for no credentials.
    let backbone = BackboneSettings::from_env(&Env::from_pairs(
        env.pairs()
            .filter(|(name, _)| !NATS_CREDENTIALS.contains(name))
            .chain([("NATS_URL", nats_url.as_str())]),
    ))?;
    let partitions = backbone.streams.partitions.all().count().to_string();

    ensure_free(ports.nats, "NATS", "--nats-port")?;
    let (http_ports, binaries) = service_ports_and_binaries(&SERVICES, ports.http_base)?;

    let nats = stop_with_parent(&mut Command::new(&nats_bin))
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &ports.nats.to_string(),
            "-js",
            "-sd",
        ])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(log_file(dir, "nats")?)
        .spawn()
        .with_context(|| format!("starting {} (set NATS_SERVER_BIN)", nats_bin.display()))?;
    let nats = platform.set_nats(nats);
    wait_listening(nats, ports.nats, &log_path(dir, "nats")).await?;

    let http = reqwest::Client::new();
    let mut urls = Vec::new();
    for ((service, port), binary) in SERVICES.iter().zip(&http_ports).zip(&binaries) {
        let mut command = Command::new(binary);
        command
            .env("NATS_URL", &nats_url)
            .env("SHOPMESH_PARTITIONS", &partitions)
            .env("SHOPMESH_HTTP_PORT", port.to_string())
            .env("RUST_LOG", env.string_or("RUST_LOG", "info"))
            .envs(keys.clone())
            .env_remove(NATS_CREDENTIALS[0])
            .env_remove(NATS_CREDENTIALS[1])
            .stdout(Stdio::null())
            .stderr(log_file(dir, service)?);
        if *service == "analytics" {
            command.env(
                "SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET",
                env.string_or("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET", "shopmesh-analytics"),
            );
        } else {
            command.env("SHOPMESH_DATA_DIR", dir);
        }
        let child = stop_with_parent(&mut command)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let process = platform.add_service(service, child);
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&http, process, &url, &log_path(dir, service)).await?;
        urls.push(url);
    }
    let [user, product, order, analytics]: [String; 4] = urls
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected four services"))?;
    let urls = Urls {
        user,
        product,
        order,
        analytics,
    };
    let seed_env = Env::from_pairs(keys);
    crate::commands::seed::seed(&http, &urls.product, &seed_env, catalogue, 42).await?;
    Ok(Started {
        urls,
        backbone,
        admin_token,
    })
}
