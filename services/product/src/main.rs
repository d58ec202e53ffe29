//! The `shopmesh-product` binary: settings from the environment, telemetry,
//! then the service until SIGINT/SIGTERM.

use shopmesh_product::settings::Settings;
use shopmesh_product::startup::Application;
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    let settings = match Settings::from_env(&env) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("shopmesh-product: {error}");
            std::process::exit(1);
        }
    };
    let telemetry_settings = match TelemetrySettings::from_env(
        &env,
        shopmesh_product::NAME,
        env!("CARGO_PKG_VERSION"),
    ) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("shopmesh-product: {error}");
            std::process::exit(1);
        }
    };
    let telemetry = telemetry::init(&telemetry_settings)?;
    let outcome = async {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await
    }
    .await;
    if let Err(error) = &outcome {
        tracing::error!(error = format!("{error:#}"), "product service failed");
    }
    telemetry.shutdown();
    outcome
}
