//! `shopmesh up`: the whole platform natively, in one command. It starts its
//! own nats-server (with its own data folder), the services on SQLite, seeds
//! the catalogue, prints the URLs and then a status line every few seconds;
//! Ctrl-C (or SIGTERM) stops every process cleanly. A second run resumes
//! from the same data folder, with the same keys.

use anyhow::{Context, bail};
use shopmesh_shared::settings::{BackboneSettings, Env};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Where NATS, the databases, the logs and the generated keys live.
    #[arg(long, default_value = "data/platform")]
    data_dir: PathBuf,
    /// NATS client port (not 4222, so that a system NATS does not clash).
    #[arg(long, default_value_t = 14222)]
    nats_port: u16,
    /// The user service's port; product, order follow on the next ports.
    #[arg(long, default_value_t = 8081)]
    http_base_port: u16,
    /// Products in the seeded catalogue.
    #[arg(long, default_value_t = 200)]
    catalogue: usize,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5)]
    status_every: u64,
}

/// The domain services `up` runs, in start order.
const SERVICES: [&str; 3] = ["user", "product", "order"];

/// A child process that is stopped with SIGTERM and waited for.
struct Managed {
    name: String,
    child: Child,
}

impl Managed {
    fn terminate(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop within {grace:?}; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process `up` started; stopped in reverse order, also on error.
struct Platform {
    processes: Vec<Managed>,
}

impl Drop for Platform {
    fn drop(&mut self) {
        for process in self.processes.iter_mut().rev() {
            process.terminate(Duration::from_secs(15));
        }
    }
}

/// Keys generated on the first run and reused afterwards, so that tokens
/// and the admin token survive a restart.
fn secrets(dir: &Path) -> anyhow::Result<HashMap<String, String>> {
    let path = dir.join("secrets.env");
    if !path.exists() {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        let text = format!(
            "SHOPMESH_AUTH_KEY={}{}\nSHOPMESH_ADMIN_TOKEN=admin-{}\n",
            random(),
            random(),
            random()
        );
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        restrict(&path)?;
    }
    let text = fs::read_to_string(&path)?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

#[cfg(unix)]
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

fn ensure_free(port: u16, what: &str) -> anyhow::Result<()> {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!(
            "port {port} (for {what}) is already taken; stop what uses it or choose other ports \
             (--nats-port, --http-base-port)"
        );
    }
    Ok(())
}

/// The service binaries sit beside this one.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} not found; build the services first (scripts/up.sh does: cargo build --release --workspace --bins)",
            path.display()
        );
    }
    Ok(path)
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<fs::File> {
    let path = dir.join("logs").join(format!("{name}.log"));
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Waits until something accepts connections on `port` (a nats-server
/// recovering a large store takes a moment).
async fn wait_listening(port: u16, name: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "{name} did not listen on port {port} within 30s; see {}",
        log.display()
    )
}

async fn wait_ready(
    http: &reqwest::Client,
    name: &str,
    url: &str,
    log: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    // Backtrace frames would push the panic message itself out of view.
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !(l.starts_with("at ")
                || l.split(':')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok()))
        })
        .rev()
        .take(20)
        .collect();
    bail!(
        "{name} was not ready within 60s; the end of {}:\n{}",
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

pub async fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    fs::create_dir_all(dir.join("logs"))?;
    fs::create_dir_all(dir.join("nats"))?;
    let secrets = secrets(dir)?;
    let nats_bin = env
        .get("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"));

    ensure_free(args.nats_port, "NATS")?;
    let ports: Vec<u16> = (0..SERVICES.len() as u16)
        .map(|i| args.http_base_port + i)
        .collect();
    for (service, port) in SERVICES.iter().zip(&ports) {
        ensure_free(*port, service)?;
    }

    let mut platform = Platform {
        processes: Vec::new(),
    };
    let nats = Command::new(&nats_bin)
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &args.nats_port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(log_file(dir, "nats")?)
        .spawn()
        .with_context(|| format!("starting {} (set NATS_SERVER_BIN)", nats_bin.display()))?;
    platform.processes.push(Managed {
        name: "nats-server".into(),
        child: nats,
    });
    let nats_url = format!("nats://127.0.0.1:{}", args.nats_port);
    wait_listening(
        args.nats_port,
        "nats-server",
        &dir.join("logs").join("nats.log"),
    )
    .await?;

    let http = reqwest::Client::new();
    let mut urls = Vec::new();
    for (service, port) in SERVICES.iter().zip(&ports) {
        let mut command = Command::new(sibling(&format!("shopmesh-{service}"))?);
        command
            .env("NATS_URL", &nats_url)
            .env("SHOPMESH_DATA_DIR", dir)
            .env("SHOPMESH_HTTP_PORT", port.to_string())
            .env("RUST_LOG", env.string_or("RUST_LOG", "info"))
            .envs(&secrets)
            .stdout(Stdio::null())
            .stderr(log_file(dir, service)?);
        let child = command.spawn()?;
        platform.processes.push(Managed {
            name: format!("shopmesh-{service}"),
            child,
        });
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(
            &http,
            service,
            &url,
            &dir.join("logs").join(format!("{service}.log")),
        )
        .await?;
        urls.push(url);
    }

    let seed_env = Env::from_pairs(secrets.clone());
    super::seed::seed(&http, &urls[1], &seed_env, args.catalogue, 42).await?;

    println!("shopmesh is up (data in {}):", dir.display());
    for (service, url) in SERVICES.iter().zip(&urls) {
        println!("  {service:<8} {url}   (health {url}/healthz, metrics {url}/metrics)");
    }
    println!("  nats     {nats_url}   (shopmesh tail, with NATS_URL={nats_url})");
    println!(
        "  admin token and signing key: {}",
        dir.join("secrets.env").display()
    );
    println!("ready; Ctrl-C stops everything");

    let settings = BackboneSettings::from_env(&Env::from_pairs([("NATS_URL", nats_url.as_str())]))?;
    let mut status = super::status::Status::new(&settings, urls.clone()).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs(args.status_every.max(1)));
    ticker.tick().await;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = ticker.tick() => {
                for process in &mut platform.processes {
                    if let Ok(Some(exit)) = process.child.try_wait() {
                        bail!("{} exited unexpectedly ({exit}); see {}", process.name, dir.join("logs").display());
                    }
                }
                match status.line().await {
                    Ok(line) => println!("{line}"),
                    Err(error) => println!("status unavailable: {error:#}"),
                }
            }
        }
    }
    println!("stopping...");
    drop(platform);
    println!("stopped");
    Ok(())
}
