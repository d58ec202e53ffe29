//! The `shopmesh-analytics` binary: settings from the environment, telemetry,
//! then the service inside an actix system on a multi-thread tokio runtime
//! until SIGINT/SIGTERM.

use shopmesh_analytics::settings::Settings;
use shopmesh_analytics::startup::Application;
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};

fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    let settings = match Settings::from_env(&env) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("shopmesh-analytics: {error}");
            std::process::exit(1);
        }
    };
    let telemetry_settings = match TelemetrySettings::from_env(
        &env,
        shopmesh_analytics::NAME,
        env!("CARGO_PKG_VERSION"),
    ) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("shopmesh-analytics: {error}");
            std::process::exit(1);
        }
    };
    shopmesh_analytics::run_system(|| async move {
        // Built inside the runtime: the OTLP exporter needs one.
        let telemetry = telemetry::init(&telemetry_settings)?;
        let outcome = async {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await
        }
        .await;
        if let Err(error) = &outcome {
            tracing::error!(error = format!("{error:#}"), "analytics service failed");
        }
        telemetry.shutdown();
        outcome
    })
}
