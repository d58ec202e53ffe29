//! `shopmesh eval --dataset PATH [--mode offline|prequential] [--json]`: the
//! recommender's quality on a MovieLens file, beside a popularity baseline,
//! replayed through the analytics service's own update and ranking code with
//! the service's settings (the same environment variables apply).

use shopmesh_analytics::eval::{Dataset, EvalReport, Mode, evaluate};
use shopmesh_analytics::settings::Settings;
use shopmesh_shared::settings::Env;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// MovieLens `u.data` or `ratings.csv`, or a folder holding one.
    #[arg(long)]
    dataset: PathBuf,
    #[arg(long, value_enum, default_value_t = EvalMode::Offline)]
    mode: EvalMode,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EvalMode {
    /// Per-user 80/20 split by time; rank everything for each user.
    Offline,
    /// Replay in time order; ask before applying each new interaction of the last 20%.
    Prequential,
}

pub fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let settings = Settings::from_env(env)?;
    let dataset = Dataset::load(&args.dataset)?;
    let mode = match args.mode {
        EvalMode::Offline => Mode::Offline,
        EvalMode::Prequential => Mode::Prequential,
    };
    let mut bar = ProgressBar::new(std::io::stderr().is_terminal());
    let report = evaluate(
        &dataset,
        mode,
        &settings.aggregates,
        &settings.recommender,
        &mut |done, total| bar.show(done, total),
    );
    bar.finish();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(report: &EvalReport) {
    let mode = match report.mode {
        Mode::Offline => "offline",
        Mode::Prequential => "prequential",
    };
    println!(
        "{mode} evaluation: {} ratings, {} users",
        report.ratings, report.users
    );
    if let Some(events) = report.events_scored {
        println!("events scored: {events}");
    }
    println!(
        "{:<12} {:>8} {:>8} {:>10}",
        "", "HR@10", "NDCG@10", "Recall@10"
    );
    println!(
        "{:<12} {:>8.3} {:>8.3} {:>10.3}",
        "shopmesh", report.hr10, report.ndcg10, report.recall10
    );
    let p = &report.popularity;
    println!(
        "{:<12} {:>8.3} {:>8.3} {:>10.3}",
        "popularity", p.hr10, p.ndcg10, p.recall10
    );
    println!("time: {:.2} s (replay included)", report.seconds);
}

/// A one-line bar on stderr, only when it is a terminal.
struct ProgressBar {
    enabled: bool,
    shown_percent: Option<u64>,
}

impl ProgressBar {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            shown_percent: None,
        }
    }

    fn show(&mut self, done: u64, total: u64) {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        if !self.enabled || self.shown_percent == Some(percent) {
            return;
        }
        self.shown_percent = Some(percent);
        let filled = (percent / 4) as usize;
        let mut stderr = std::io::stderr();
        let _ = write!(
            stderr,
            "\r[{}{}] {percent:>3}%",
            "#".repeat(filled),
            " ".repeat(25 - filled)
        );
        let _ = stderr.flush();
    }

    fn finish(&self) {
        if self.enabled && self.shown_percent.is_some() {
            eprintln!();
        }
    }
}
