//! The `shopmesh-user` binary: settings from the environment, telemetry,
//! then the application until a signal stops it.

use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use shopmesh_user::settings::Settings;
use shopmesh_user::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
