//! `shopmesh up`: the whole platform natively, in one command. It starts its
//! own nats-server (with its own data folder), the user, product and order
//! services on SQLite, the analytics service, seeds the catalogue, runs a
//! gentle background load, prints the URLs and then a status line every few
//! seconds; Ctrl-C (or SIGTERM), at any moment, stops every process cleanly.
//! A second run resumes from the same data folder, with the same keys.
//!
//! NATS runs with the users and permissions of `deploy/nats/nats.conf`, as
//! in compose and Kubernetes: each service connects as its own user, the
//! status line as `load` (it only reads the events stream's counters), and
//! an operator's `shopmesh tail` as `admin`. Passwords reach the processes
//! through their environment only (a command line is world-readable).
//!
//! Files: `processes` (the children and the guard that stops them),
//! `secrets` (the generated keys and passwords), `nats_config` (the server
//! configuration), `load` (the background shoppers); the status line is
//! `commands::status`.

pub(crate) mod load;
mod nats_config;
pub(crate) mod processes;
mod secrets;

use anyhow::{Context, bail};
use load::BackgroundLoad;
use processes::{Platform, ensure_free, log_file, log_path, wait_listening, wait_ready};
use shopmesh_shared::settings::{BackboneSettings, Env};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(clap::Args)]
pub struct Args {
    /// Where NATS, the databases, the logs and the generated keys live.
    #[arg(long, default_value = "data/platform")]
    data_dir: PathBuf,
    /// NATS client port (not 4222, so that a system NATS does not clash).
    #[arg(long, default_value_t = 14222)]
    nats_port: u16,
    /// NATS monitoring port (/varz, /jsz, /connz; not 8222, as for --nats-port).
    #[arg(long, default_value_t = 18222)]
    nats_monitor_port: u16,
    /// The user service's port; product, order and analytics follow on the next ports.
    #[arg(long, default_value_t = 8081)]
    http_base_port: u16,
    /// Products in the seeded catalogue.
    #[arg(long, default_value_t = 200)]
    catalogue: usize,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5)]
    status_every: u64,
    /// Actions per second of the background shoppers, in total (0: no load).
    #[arg(long, default_value_t = 20.0, value_parser = load_rate)]
    load_rate: f64,
    /// Background shoppers (each registers and logs in first).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    load_users: u32,
}

fn load_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=100_000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "expected actions per second from 0 (no load) to 100000, got {text:?}"
        )),
    }
}

/// The services `up` runs, in start order: the domain services, then
/// analytics, which consumes what they publish. Ports follow from
/// `--http-base-port` in this order.
pub(crate) const SERVICES: [&str; 4] = ["user", "product", "order", "analytics"];

/// The NATS user of the status line: it reads the events stream's counters
/// and nothing else, which is what this user may do.
const STATUS_NATS_USER: &str = "load";
/// The NATS user people tail the streams with.
const OPERATOR_NATS_USER: &str = "admin";

/// What a successful start leaves running besides the processes.
struct Started {
    urls: Vec<String>,
    backbone: BackboneSettings,
    load: Option<BackgroundLoad>,
}

pub async fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    // Signals are ours from the very start: a Ctrl-C or SIGTERM while the
    // services are still starting must stop the ones already running, not
    // kill `up` and orphan them.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut platform = Platform::default();
    let started = tokio::select! {
        started = start(&args, env, &mut platform) => started?,
        _ = interrupt.recv() => return stop(platform, None).await,
        _ = terminate.recv() => return stop(platform, None).await,
    };
    let Started {
        urls,
        backbone,
        load,
    } = started;
    let outcome = serve(
        &args,
        &backbone,
        urls,
        &mut platform,
        &load,
        &mut interrupt,
        &mut terminate,
    )
    .await;
    // Whatever ended the loop, the load and every process stop here.
    stop(platform, load).await?;
    outcome
}

/// Prints status lines until a signal (`Ok`) or a process dies (`Err`).
async fn serve(
    args: &Args,
    backbone: &BackboneSettings,
    urls: Vec<String>,
    platform: &mut Platform,
    load: &Option<BackgroundLoad>,
    interrupt: &mut Signal,
    terminate: &mut Signal,
) -> anyhow::Result<()> {
    let analytics = urls[3].clone();
    let mut status = super::status::Status::new(backbone, urls, analytics).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs(args.status_every.max(1)));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            _ = ticker.tick() => {
                for process in platform.all_mut() {
                    if let Some(exit) = process.exited() {
                        bail!(
                            "{} exited unexpectedly ({exit}); see {}",
                            process.name,
                            args.data_dir.join("logs").display()
                        );
                    }
                }
                match status.line(load.as_ref().map(BackgroundLoad::figures)).await {
                    Ok(line) => println!("{line}"),
                    Err(error) => println!("status unavailable: {error:#}"),
                }
            }
        }
    }
}

/// Stops the load, then every process.
async fn stop(mut platform: Platform, load: Option<BackgroundLoad>) -> anyhow::Result<()> {
    println!("stopping...");
    if let Some(load) = load {
        let figures = load.stop().await;
        println!(
            "load: {} actions by {} shoppers, {} errors",
            figures.actions, figures.signed_up, figures.errors
        );
    }
    // Blocking waits, off the async workers.
    tokio::task::spawn_blocking(move || platform.stop()).await?;
    println!("stopped");
    Ok(())
}

async fn start(args: &Args, env: &Env, platform: &mut Platform) -> anyhow::Result<Started> {
    let dir = &args.data_dir;
    fs::create_dir_all(dir.join("logs"))?;
    fs::create_dir_all(dir.join("nats"))?;
    let nats_users = nats_config::users();
    let secrets = secrets::load_or_create(dir, &nats_users)?;
    let nats_bin = env
        .get("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"));
    let nats_url = format!("nats://127.0.0.1:{}", args.nats_port);
    let status_user = nats_config::user(STATUS_NATS_USER)?;
    let operator = nats_config::user(OPERATOR_NATS_USER)?;
    // The environment's backbone settings (stream names, partitions) with
    // our own NATS and the status line's user: checked before anything
    // starts.
    let backbone = BackboneSettings::from_env(&Env::from_pairs(env.pairs().chain([
        ("NATS_URL", nats_url.as_str()),
        ("NATS_USER", status_user.name.as_str()),
        ("NATS_PASSWORD", secrets.nats_password(&status_user)),
    ])))?;
    let partitions = backbone.streams.partitions.all().count().to_string();
    let snapshot_bucket = env.string_or("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET", "shopmesh-analytics");
    nats_config::ensure_grants(&snapshot_bucket)?;

    ensure_free(args.nats_port, "NATS", "--nats-port")?;
    ensure_free(
        args.nats_monitor_port,
        "NATS monitoring",
        "--nats-monitor-port",
    )?;
    let (ports, binaries) = processes::service_ports_and_binaries(&SERVICES, args.http_base_port)?;

    // The same store folder as before NATS had users (`-sd <dir>/nats`), so
    // an older data folder resumes.
    let conf_path = dir.join("nats.conf");
    let store = fs::canonicalize(dir.join("nats"))?;
    let conf = nats_config::native(args.nats_port, args.nats_monitor_port, &store)?;
    fs::write(&conf_path, conf).with_context(|| format!("writing {}", conf_path.display()))?;
    let mut nats = Command::new(&nats_bin);
    nats.arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(log_file(dir, "nats")?);
    // The configuration names the variables; their values only live here.
    for user in &nats_users {
        nats.env(&user.password_variable, secrets.nats_password(user));
    }
    let nats = processes::stop_with_parent(&mut nats)
        .spawn()
        .with_context(|| format!("starting {} (set NATS_SERVER_BIN)", nats_bin.display()))?;
    let nats = platform.set_nats(nats);
    wait_listening(nats, args.nats_port, &log_path(dir, "nats")).await?;

    let http = reqwest::Client::new();
    let mut urls = Vec::new();
    for ((service, port), binary) in SERVICES.iter().zip(&ports).zip(&binaries) {
        let nats_user = nats_config::user(service)?;
        let mut command = Command::new(binary);
        command
            .env("NATS_URL", &nats_url)
            .env("NATS_USER", &nats_user.name)
            .env("NATS_PASSWORD", secrets.nats_password(&nats_user))
            .env("SHOPMESH_PARTITIONS", &partitions)
            .env("SHOPMESH_HTTP_PORT", port.to_string())
            .env("RUST_LOG", env.string_or("RUST_LOG", "info"))
            .envs(secrets.service_keys())
            .stdout(Stdio::null())
            .stderr(log_file(dir, service)?);
        // Another user's password, set where `up` was started, is not this
        // service's to see.
        for other in &nats_users {
            command.env_remove(&other.password_variable);
        }
        if *service == "analytics" {
            // No database; its state lives in memory and in snapshots in
            // this NATS's object store.
            command.env("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET", &snapshot_bucket);
        } else {
            command.env("SHOPMESH_DATA_DIR", dir);
        }
        let child = processes::stop_with_parent(&mut command)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let process = platform.add_service(service, child);
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&http, process, &url, &log_path(dir, service)).await?;
        urls.push(url);
    }

    let seed_env = Env::from_pairs(secrets.service_keys());
    super::seed::seed(&http, &urls[1], &seed_env, args.catalogue, 42).await?;

    let load = if args.load_rate > 0.0 {
        Some(
            BackgroundLoad::start(
                &urls[0],
                &urls[1],
                &urls[2],
                args.load_users,
                args.load_rate,
            )
            .await,
        )
    } else {
        None
    };

    println!("shopmesh is up (data in {}):", dir.display());
    for (service, url) in SERVICES.iter().zip(&urls).take(3) {
        println!("  {service:<10}{url}   (health {url}/healthz, metrics {url}/metrics)");
    }
    let analytics = &urls[3];
    println!(
        "  analytics {analytics}   (recommendations {analytics}/recommendations/{{user_id}}, \
         trending {analytics}/trending, consumer stats {analytics}/stats)"
    );
    println!(
        "  nats      {nats_url}   (monitoring http://127.0.0.1:{}; users and permissions of \
         deploy/nats/nats.conf)",
        args.nats_monitor_port
    );
    println!(
        "  tail      NATS_URL={nats_url} NATS_USER={} NATS_PASSWORD=\"${}\" shopmesh tail \
         (after `set -a; . {}; set +a`)",
        operator.name,
        operator.password_variable,
        secrets.path().display()
    );
    let load = match load {
        None => {
            println!("  load      off (--load-rate 0)");
            None
        }
        Some(Ok(load)) => {
            println!(
                "  load      {} background shoppers at ~{} actions/s in total \
                 (--load-users, --load-rate; 0 turns it off)",
                args.load_users, args.load_rate
            );
            Some(load)
        }
        Some(Err(error)) => {
            println!("  load      off: {error:#}");
            None
        }
    };
    println!(
        "  admin token, signing key and NATS passwords: {}",
        secrets.path().display()
    );
    println!("  logs: {}", dir.join("logs").display());
    println!("  processes: {}", platform.pids());
    println!("ready; Ctrl-C stops everything");
    Ok(Started {
        urls,
        backbone,
        load,
    })
}
