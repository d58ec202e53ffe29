//! `shopmesh load`: simulated shoppers against the running user, product and
//! order services, over HTTP like any client. Two phases: every shopper signs
//! up (register, log in; password hashing makes this slow on purpose, so it
//! is not paced), then they browse and buy for `--duration` at `--rate`
//! actions per second in total. A live progress line goes to stderr when it
//! is a terminal; the summary (per action kind: counts, latency percentiles,
//! errors) goes to stdout, as JSON with `--json`.
//!
//! Files: `args` (flags), `tastes` (catalogue and shopper preferences),
//! `shopper` (behaviour and requests), `pacer` (the shared rate),
//! `stats` (counting, percentiles, the summary), `progress` (the live line).

mod args;
pub(crate) mod pacer;
mod progress;
pub(crate) mod shopper;
pub(crate) mod stats;
pub(crate) mod tastes;

pub use args::Args;

use anyhow::{Context as _, bail};
use futures::StreamExt;
use pacer::Pacer;
use progress::{Phase, Progress};
use shopper::{Context, Shopper};
use stats::{Action, RunInfo, Stats};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tastes::Catalogue;

/// The actions of the sign-up phase.
pub(crate) const SIGN_UP: [Action; 2] = [Action::Register, Action::Login];

async fn ready(http: &reqwest::Client, service: &str, base: &str) -> anyhow::Result<()> {
    let url = format!("{base}/readyz");
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the {service} service at {base}"))?;
    if !response.status().is_success() {
        bail!(
            "the {service} service at {base} is not ready: GET /readyz answered {}",
            response.status()
        );
    }
    Ok(())
}

/// Runs the load on a single-threaded runtime of its own: the generator
/// shares the machine's cores with the services it measures, and one thread
/// spends less on cross-thread wake-ups than a pool (measured here against
/// `shopmesh up`: ~48 instead of ~58 us of CPU per action, and a slightly
/// higher achieved rate).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("shopmesh-load".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("build the load runtime")
                .and_then(|runtime| runtime.block_on(generate(args)));
            let _ = done.send(result);
        })
        .context("start the load thread")?;
    result.await.context("the load thread died")?
}

async fn generate(args: Args) -> anyhow::Result<()> {
    // One client for every shopper: its pool keeps a connection per busy
    // shopper open, so the run measures requests, not TCP handshakes.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(args.users as usize + 16)
        // Below actix-web's 5 s keep-alive: the client drops an idle
        // connection before the server closes it, so a request never races
        // a closing connection (seen as a rare "transport" error).
        .pool_idle_timeout(Duration::from_secs(4))
        .tcp_nodelay(true)
        .build()
        .context("build the HTTP client")?;
    let trim = |url: &str| url.trim_end_matches('/').to_owned();
    let (user_url, product_url, order_url) = (
        trim(&args.user_url),
        trim(&args.product_url),
        trim(&args.order_url),
    );
    ready(&http, "user", &user_url).await?;
    ready(&http, "order", &order_url).await?;
    let catalogue = Catalogue::fetch(&http, &product_url).await?;
    let catalogue_size = catalogue.products.len();
    let ctx = Arc::new(Context {
        http,
        user_url,
        product_url,
        order_url,
        catalogue,
        stats: Stats::default(),
        think_time: args.think_time,
    });
    let progress = Progress::start(ctx.clone(), args.users, args.duration);

    // Emails must be new on every run against the same databases.
    let run_tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let signup_started = Instant::now();
    let signups = futures::stream::iter(0..args.users)
        .map(|index| {
            let ctx = ctx.clone();
            let tag = run_tag.clone();
            async move { Shopper::sign_up(&ctx, index, args.seed, &tag).await }
        })
        .buffer_unordered(args.signup_concurrency as usize)
        .filter_map(std::future::ready)
        .collect::<Vec<_>>();
    let mut interrupted = false;
    let shoppers = tokio::select! {
        shoppers = signups => shoppers,
        _ = tokio::signal::ctrl_c() => {
            interrupted = true;
            Vec::new()
        }
    };
    let signup_elapsed = signup_started.elapsed();
    let signed_up = shoppers.len() as u64;
    if shoppers.is_empty() && !interrupted {
        progress.finish().await;
        let errors = ctx.stats.snapshot().errors;
        bail!("no shopper could sign up at {}: {errors:?}", ctx.user_url);
    }

    let pacer = Arc::new(Pacer::new(args.rate, args.duration));
    progress.phase(Phase::Run(pacer.start()));
    let shoppers: Vec<_> = shoppers
        .into_iter()
        .map(|shopper| tokio::spawn(shopper.run(ctx.clone(), pacer.clone())))
        .collect();
    let all_done = futures::future::join_all(shoppers);
    tokio::pin!(all_done);
    loop {
        tokio::select! {
            results = &mut all_done => {
                for result in results {
                    result.context("a shopper task failed")?;
                }
                break;
            }
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                // Stop taking slots; what is in flight still finishes and counts.
                interrupted = true;
                pacer.stop();
            }
        }
    }
    let run_elapsed = pacer.start().elapsed();
    progress.finish().await;

    let snapshot = ctx.stats.snapshot();
    let info = RunInfo {
        shoppers: args.users,
        signed_up,
        target_rate: args.rate,
        duration: args.duration,
        think_time: args.think_time,
        seed: args.seed,
        catalogue: catalogue_size,
        signup_elapsed,
        run_elapsed,
        run_actions: snapshot.total() - snapshot.count_of(&SIGN_UP),
        interrupted,
    };
    if args.json {
        println!("{}", stats::summary_json(&info, &snapshot));
    } else {
        print!("{}", stats::summary_text(&info, &snapshot));
    }
    Ok(())
}
