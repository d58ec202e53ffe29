//! `shopmesh-order`: reads settings, starts telemetry, runs the service.

use shopmesh_order::settings::Settings;
use shopmesh_order::startup::Application;
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let env = Env::from_process();
    let (settings, telemetry_settings) = match (
        Settings::from_env(&env),
        TelemetrySettings::from_env(&env, shopmesh_order::SERVICE, env!("CARGO_PKG_VERSION")),
    ) {
        (Ok(settings), Ok(telemetry)) => (settings, telemetry),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("shopmesh-order: {error}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match telemetry::init(&telemetry_settings) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("shopmesh-order: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        let app = Application::build(settings).await?;
        tracing::info!(port = app.port(), "order service listening");
        app.run_until_stopped().await
    }
    .await;
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "order service failed");
            eprintln!("shopmesh-order: {error:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}
