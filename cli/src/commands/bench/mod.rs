//! `shopmesh bench`: the whole platform measured on this machine, in one
//! command. It starts its own nats-server and the four service binaries on
//! SQLite in a temporary folder (with `up`'s process guard), seeds a
//! catalogue, then measures, in this order:
//!
//! 1. throughput: N events through the services' publish path to the
//!    analytics service, until it has applied them all, against raw
//!    async-nats JetStream publish + consume of the same messages in the
//!    same run (`throughput`);
//! 2. latency from a published event to a changed recommendation, with a
//!    background event rate flowing (`probes`);
//! 3. `GET /recommendations/{user}` and `POST /orders` at fixed offered
//!    rates, open loop (`http`);
//! 4. the peak memory of every process (`memory`);
//!
//! and stops every process, whatever ends the run (Ctrl-C included). Tables
//! for people by default; `--json` prints one object with these keys
//! (latencies in milliseconds, rates per second):
//!
//! ```text
//! quick, cores, nats_server_version, partitions, catalogue_products
//! throughput: events, users, message_bytes, ours_events_per_s, raw_msgs_per_s,
//!             ratio, target_ratio,
//!             rounds: [{ours_events_per_s, raw_msgs_per_s, ratio, ours_first}]
//! latency:    probes, probe_rate, background_target_rate, background_rate,
//!             timeouts, p50_ms, p99_ms, max_ms
//! http:       duration_s, shoppers,
//!             recommendations | orders: {rate, requests, errors, p50_ms, p99_ms,
//!                                        max_ms, error_kinds: {kind: count}}
//! memory:     {nats-server | user | product | order | analytics: {pid, peak_rss_kib}}
//! ```
//!
//! Progress lines go to stderr. Files: `args` (flags and the plan),
//! `platform` (the processes), `workload` (the synthetic events),
//! `applied` (how far analytics has got), `throughput`, `probes`, `http`,
//! `memory`, `samples` (percentiles), `report` (JSON and tables).

mod applied;
mod args;
mod http;
mod memory;
mod platform;
mod probes;
mod report;
mod samples;
mod throughput;
mod workload;

pub use args::Args;

use super::load::tastes::Catalogue;
use super::up::processes::Platform;
use anyhow::anyhow;
use args::Plan;
use http::{HttpLoad, HttpPlan};
use platform::Ports;
use probes::Probes;
use report::{Report, ThroughputFigures};
use shopmesh_shared::nats::{EventPublisher, connect, jetstream_context};
use shopmesh_shared::settings::Env;
use std::path::{Path, PathBuf};
use std::time::Duration;
use throughput::Throughput;
use tokio::signal::unix::{SignalKind, signal};
use workload::Workload;

/// How long analytics may take to catch up between phases.
const SETTLE: Duration = Duration::from_secs(120);
/// Products tried as latency probes (those with similar products).
const PROBE_PRODUCTS: usize = 50;

fn note(text: &str) {
    eprintln!("bench: {text}");
}

pub async fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let plan = args.plan();
    // Signals are ours from the start: a Ctrl-C must stop the processes
    // already running, not kill the bench and orphan them.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut temporary = None;
    let dir: PathBuf = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => {
            let made = tempfile::Builder::new()
                .prefix("shopmesh-bench-")
                .tempdir()?;
            let path = made.path().to_owned();
            temporary = Some(made);
            path
        }
    };
    let ports = Ports {
        nats: args.nats_port,
        http_base: args.http_base_port,
    };
    let mut platform = Platform::default();
    let (outcome, signalled) = tokio::select! {
        report = measure(&plan, env, &dir, &ports, &mut platform) => (report, false),
        _ = interrupt.recv() => (Err(anyhow!("interrupted")), true),
        _ = terminate.recv() => (Err(anyhow!("terminated")), true),
    };
    // A process that died is the likeliest cause of a failure: say which.
    let exited: Vec<String> = platform
        .all_mut()
        .filter_map(|p| {
            p.exited()
                .map(|status| format!("{} exited ({status})", p.name))
        })
        .collect();
    note("stopping every process");
    // Blocking waits, off the async workers; before the folder goes.
    tokio::task::spawn_blocking(move || platform.stop()).await?;
    let report = match outcome {
        Ok(report) => report,
        Err(error) if signalled => return Err(error),
        Err(error) => {
            // The logs outlive a failed run.
            let logs = dir.join("logs");
            if let Some(made) = temporary {
                let _kept = made.keep();
            }
            let error = if exited.is_empty() {
                error
            } else {
                error.context(exited.join(", "))
            };
            return Err(error.context(format!("the logs are in {}", logs.display())));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

async fn measure(
    plan: &Plan,
    env: &Env,
    dir: &Path,
    ports: &Ports,
    platform: &mut Platform,
) -> anyhow::Result<Report> {
    note(&format!(
        "starting nats-server and the services in {}",
        dir.display()
    ));
    let started = platform::start(env, dir, ports, plan.catalogue, platform).await?;
    let (urls, backbone) = (&started.urls, &started.backbone);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        // Below actix-web's 5 s keep-alive (see `shopmesh load`).
        .pool_idle_timeout(Duration::from_secs(4))
        .tcp_nodelay(true)
        .build()?;
    let client = connect(&backbone.nats, "shopmesh-bench").await?;
    let nats_server_version = client.server_info().version;
    let publisher = EventPublisher::new(client.clone(), &backbone.publisher, &backbone.streams);
    let js = jetstream_context(client, &backbone.publisher);
    let streams = &backbone.streams;
    let settle =
        |at_least: u64| applied::settle(&js, streams, &http, &urls.analytics, at_least, SETTLE);

    let catalogue = Catalogue::fetch(&http, &urls.product).await?;
    // Analytics knows every product before the first measurement.
    settle(catalogue.products.len() as u64).await?;
    let mut workload = Workload::new(&catalogue, plan.users, 42)?;

    let throughput = Throughput {
        publisher: &publisher,
        raw_publishing: connect(&backbone.nats, "shopmesh-bench-raw-publish").await?,
        raw_consuming: connect(&backbone.nats, "shopmesh-bench-raw-consume").await?,
        backbone,
        http: &http,
        analytics: &urls.analytics,
    };
    let message_bytes = throughput.mean_message_bytes(&workload.events(1_000))?;
    let mut rounds = Vec::with_capacity(plan.rounds);
    for round in 0..plan.rounds {
        note(&format!(
            "throughput round {} of {}: {} events each side",
            round + 1,
            plan.rounds,
            plan.events
        ));
        let events = workload.events(plan.events);
        settle(0).await?;
        rounds.push(throughput.round(&events, round % 2 == 1).await?);
    }
    let throughput = ThroughputFigures::new(plan.events, plan.users, message_bytes, rounds);

    settle(0).await?;
    note(&format!(
        "latency: {} probes at {}/s, {} background events/s",
        plan.probes, plan.probe_rate, plan.background_rate
    ));
    let candidates =
        probes::candidates(&http, &urls.analytics, &workload.products, PROBE_PRODUCTS).await?;
    let probes = Probes {
        publisher: &publisher,
        http: &http,
        analytics: &urls.analytics,
        candidates: &candidates,
    };
    let (latency, workload) = probes
        .run(plan.probes, plan.probe_rate, plan.background_rate, workload)
        .await?;

    settle(0).await?;
    note(&format!(
        "HTTP: {} recommendations/s and {} orders/s for {:?}",
        plan.recommend_rate, plan.order_rate, plan.http_duration
    ));
    let http_figures = HttpLoad {
        http: &http,
        urls,
        admin_token: &started.admin_token,
        users: &workload.users,
    }
    .run(
        &HttpPlan {
            recommend_rate: plan.recommend_rate,
            order_rate: plan.order_rate,
            duration: plan.http_duration,
            shoppers: plan.shoppers,
        },
        catalogue,
    )
    .await?;

    let memory = platform
        .all_mut()
        .map(|process| memory::peak(&process.name, process.pid()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Report {
        quick: plan.quick,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        nats_server_version,
        partitions: backbone.streams.partitions.get(),
        catalogue_products: workload.products.len(),
        throughput,
        latency,
        http: http_figures,
        memory,
    })
}
