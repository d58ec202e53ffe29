//! The live progress line on stderr, redrawn four times a second, only when
//! stderr is a terminal (a log file or a pipe gets the summary alone).

use super::SIGN_UP;
use super::shopper::Context;
use super::stats::{Action, Latencies, human};
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    SignUp,
    /// The paced run, started at this instant.
    Run(Instant),
    Done,
}

pub struct Progress {
    phase: watch::Sender<Phase>,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(ctx: Arc<Context>, users: u32, duration: Duration) -> Self {
        let (phase, receiver) = watch::channel(Phase::SignUp);
        let task = std::io::stderr()
            .is_terminal()
            .then(|| tokio::spawn(draw(ctx, receiver, users, duration)));
        Self { phase, task }
    }

    pub fn phase(&self, phase: Phase) {
        let _ = self.phase.send(phase);
    }

    /// Stops drawing and clears the line.
    pub async fn finish(mut self) {
        self.phase(Phase::Done);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn draw(ctx: Arc<Context>, phase: watch::Receiver<Phase>, users: u32, duration: Duration) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // (when, actions so far): the rate is over the last second or so.
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut stderr = std::io::stderr();
    loop {
        tick.tick().await;
        let current = *phase.borrow();
        let snapshot = ctx.stats.snapshot();
        let line = match current {
            Phase::Done => {
                let _ = write!(stderr, "\r\x1b[2K");
                let _ = stderr.flush();
                return;
            }
            Phase::SignUp => {
                let registered = snapshot.actions[Action::Register as usize].ok;
                let logged_in = snapshot.actions[Action::Login as usize].ok;
                format!(
                    "signing up: {registered}/{users} registered, {logged_in} logged in, {} errors",
                    snapshot.total_errors()
                )
            }
            Phase::Run(started) => {
                let actions = snapshot.total() - snapshot.count_of(&SIGN_UP);
                let now = Instant::now();
                recent.push_back((now, actions));
                while recent.len() > 5 {
                    recent.pop_front();
                }
                let (then, before) = recent[0];
                let rate = match now.duration_since(then).as_secs_f64() {
                    s if s > 0.0 => (actions - before) as f64 / s,
                    _ => 0.0,
                };
                let mut latency = Latencies::empty();
                for action in snapshot
                    .actions
                    .iter()
                    .filter(|a| !SIGN_UP.contains(&a.action))
                {
                    latency.merge(&action.latency);
                }
                let errors = match snapshot.errors.iter().max_by_key(|(_, n)| **n) {
                    None => "no errors".to_owned(),
                    Some((kind, n)) if snapshot.errors.len() == 1 => format!("errors: {kind} {n}"),
                    Some((kind, n)) => format!(
                        "errors: {} ({kind} {n}, {} more kinds)",
                        snapshot.total_errors(),
                        snapshot.errors.len() - 1
                    ),
                };
                format!(
                    "[{:>5.1}s/{:.0}s] {actions} actions, {rate:.0}/s  p50 {} p99 {}  out-of-stock {}  {errors}",
                    started.elapsed().as_secs_f64(),
                    duration.as_secs_f64(),
                    human(latency.quantile(0.5)),
                    human(latency.quantile(0.99)),
                    snapshot.out_of_stock(),
                )
            }
        };
        let _ = write!(stderr, "\r\x1b[2K{line}");
        let _ = stderr.flush();
    }
}
