//! The `shopmesh-user` binary: settings from the environment, telemetry,
//! then the application until a signal stops it.

use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use shopmesh_user::settings::Settings;
use shopmesh_user::startup::Application;

fn main() -> anyhow::Result<()> {
    keep_large_allocations_out_of_the_heap();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// glibc raises its mmap threshold after the first large free, so from then
/// on the 19 MiB argon2 work areas come from the heap arenas and are never
/// given back: measured 51 MiB resident at idle after one registration and
/// one login (scripts/bench-services.sh), against ~15 MiB for the other
/// services. A fixed threshold keeps every large block mmapped, so its memory
/// returns to the system as soon as a hash is done.
fn keep_large_allocations_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, and runs before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

async fn run() -> anyhow::Result<()> {
    let env = Env::from_process();
    let settings = Settings::from_env(&env).unwrap_or_else(|error| exit_with(&error));
    let telemetry_settings =
        TelemetrySettings::from_env(&env, shopmesh_user::SERVICE, env!("CARGO_PKG_VERSION"))
            .unwrap_or_else(|error| exit_with(&error));
    let telemetry = telemetry::init(&telemetry_settings)?;
    let result = match Application::build(settings).await {
        Ok(app) => app.run_until_stopped().await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "shopmesh-user failed");
    }
    telemetry.shutdown();
    result
}

/// Settings errors name the variable; they are the operator's to fix, so a
/// message and exit code 1 rather than a backtrace.
fn exit_with(error: &dyn std::fmt::Display) -> ! {
    eprintln!("shopmesh-user: {error}");
    std::process::exit(1)
}
