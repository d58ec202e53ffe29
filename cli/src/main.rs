//! The `shopmesh` command. Each subcommand lives in `commands/`; this file only
//! parses arguments, sets up telemetry and reports errors.

use clap::{Parser, Subcommand};
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use std::process::ExitCode;

mod commands;

#[derive(Parser)]
#[command(
    name = "shopmesh",
    version,
    about = "shopmesh: an event-driven e-commerce mesh on NATS JetStream"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the events and dead-letter streams from the environment's settings.
    Provision(commands::provision::Args),
    /// Show the partition and subjects of a user's events.
    Partition(commands::partition::Args),
    /// Fill the catalogue with a deterministic set of products (idempotent).
    Seed(commands::seed::Args),
    /// Print the events on a subject pattern as JSON lines with their headers.
    Tail(commands::tail::Args),
    /// Run the whole platform natively: NATS, the services, a seeded catalogue.
    Up(commands::up::Args),
    /// Measure the recommender on MovieLens ratings against a popularity baseline.
    Eval(commands::eval::Args),
    /// Simulated shoppers against the running services; reports rates, latencies and errors.
    Load(commands::load::Args),
    /// Measure the whole platform: throughput against raw JetStream, latencies, memory.
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let result = runtime.block_on(async {
        let mut settings =
            TelemetrySettings::from_env(&env, "shopmesh-cli", env!("CARGO_PKG_VERSION"))?;
        if env.get("RUST_LOG").is_none() {
            // A command's output is for people: only warnings and errors by default.
            settings.log_filter = "warn".into();
        }
        let telemetry = telemetry::init(&settings)?;
        let result = match cli.command {
            Command::Provision(args) => commands::provision::run(args, &env).await,
            Command::Partition(args) => commands::partition::run(args, &env),
            Command::Seed(args) => commands::seed::run(args, &env).await,
            Command::Tail(args) => commands::tail::run(args, &env).await,
            Command::Up(args) => commands::up::run(args, &env).await,
            Command::Eval(args) => commands::eval::run(args, &env),
            Command::Load(args) => commands::load::run(args).await,
            Command::Bench(args) => commands::bench::run(args, &env).await,
        };
        telemetry.shutdown();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shopmesh: {error:#}");
            ExitCode::FAILURE
        }
    }
}
