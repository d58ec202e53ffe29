//! The gentle background load of `shopmesh up`: a few simulated shoppers
//! (the `shopmesh load` shoppers, pacer and counters) browsing and buying at
//! a low rate until `up` stops, so that the analytics service, its
//! recommendations and the status line have something to show. Its errors
//! are counted and shown, never fatal: `up` keeps running without it.

use crate::commands::load::SIGN_UP;
use crate::commands::load::pacer::Pacer;
use crate::commands::load::shopper::{Context, Shopper};
use crate::commands::load::tastes::Catalogue;
use futures::StreamExt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Sign-ups at once: password hashing is costly on purpose, and `up` shares
/// the machine with the services it has just started.
const SIGNUP_CONCURRENCY: usize = 2;
/// How long in-flight actions get to finish when `up` stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

const SIGNING_UP: u8 = 0;
const RUNNING: u8 = 1;
const FAILED: u8 = 2;

/// What the status line shows of the load.
#[derive(Debug, Clone, Default)]
pub struct LoadFigures {
    /// Paced actions (sign-ups left out) since the start.
    pub actions: u64,
    pub errors: u64,
    pub signed_up: u64,
    /// Still registering its shoppers.
    pub signing_up: bool,
    /// Why it stopped, when it did.
    pub failure: Option<String>,
}

pub struct BackgroundLoad {
    ctx: Arc<Context>,
    pacer: Arc<Pacer>,
    phase: Arc<AtomicU8>,
    failure: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

impl BackgroundLoad {
    /// Reads the catalogue, then signs `users` shoppers up and runs them at
    /// `rate` actions per second in total, in the background.
    pub async fn start(
        user_url: &str,
        product_url: &str,
        order_url: &str,
        users: u32,
        rate: f64,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            // Below actix-web's 5 s keep-alive, as in `shopmesh load`.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()?;
        let catalogue = Catalogue::fetch(&http, product_url).await?;
        anyhow::ensure!(
            !catalogue.products.is_empty(),
            "the catalogue is empty (--catalogue 0)"
        );
        let ctx = Arc::new(Context {
            http,
            user_url: user_url.to_owned(),
            product_url: product_url.to_owned(),
            order_url: order_url.to_owned(),
            catalogue,
            stats: Default::default(),
            think_time: Duration::from_millis(10),
        });
        // No end: the run lasts until `stop`.
        let pacer = Arc::new(Pacer::new(rate, Duration::MAX));
        let phase = Arc::new(AtomicU8::new(SIGNING_UP));
        let failure = Arc::new(Mutex::new(None));
        let task = tokio::spawn(drive(
            ctx.clone(),
            pacer.clone(),
            users,
            phase.clone(),
            failure.clone(),
        ));
        Ok(Self {
            ctx,
            pacer,
            phase,
            failure,
            task,
        })
    }

    pub fn figures(&self) -> LoadFigures {
        let snapshot = self.ctx.stats.snapshot();
        let phase = self.phase.load(Ordering::Relaxed);
        LoadFigures {
            actions: snapshot.total() - snapshot.count_of(&SIGN_UP),
            errors: snapshot.total_errors(),
            signed_up: snapshot.actions[crate::commands::load::stats::Action::Login as usize].ok,
            signing_up: phase == SIGNING_UP,
            failure: if phase == FAILED {
                self.failure.lock().expect("failure lock").clone()
            } else {
                None
            },
        }
    }

    /// Takes no more action slots, lets in-flight actions finish (briefly)
    /// and returns the final figures.
    pub async fn stop(mut self) -> LoadFigures {
        self.pacer.stop();
        if self.phase.load(Ordering::Relaxed) == SIGNING_UP {
            // A sign-up in progress is not worth waiting for.
            self.task.abort();
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        self.figures()
    }
}

async fn drive(
    ctx: Arc<Context>,
    pacer: Arc<Pacer>,
    users: u32,
    phase: Arc<AtomicU8>,
    failure: Arc<Mutex<Option<String>>>,
) {
    // Emails must be new on every run against the same databases.
    let run_tag = format!("up-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let shoppers: Vec<Shopper> = futures::stream::iter(0..users)
        .map(|index| {
            let ctx = ctx.clone();
            let tag = run_tag.clone();
            async move { Shopper::sign_up(&ctx, index, 42, &tag).await }
        })
        .buffer_unordered(SIGNUP_CONCURRENCY)
        .filter_map(std::future::ready)
        .collect()
        .await;
    if shoppers.is_empty() {
        let errors = ctx.stats.snapshot().errors;
        *failure.lock().expect("failure lock") =
            Some(format!("no shopper could sign up: {errors:?}"));
        phase.store(FAILED, Ordering::Relaxed);
        return;
    }
    phase.store(RUNNING, Ordering::Relaxed);
    let shoppers = shoppers
        .into_iter()
        .map(|shopper| tokio::spawn(shopper.run(ctx.clone(), pacer.clone())));
    // A shopper that panics is one shopper fewer, not the end of `up`.
    let lost = futures::future::join_all(shoppers)
        .await
        .into_iter()
        .filter(Result::is_err)
        .count();
    if lost > 0 {
        *failure.lock().expect("failure lock") = Some(format!("{lost} shopper task(s) failed"));
        phase.store(FAILED, Ordering::Relaxed);
    }
}
