//! The order service's settings: the shared core plus the product calls' timeout.

use shopmesh_shared::service::CoreSettings;
use shopmesh_shared::settings::{Env, SettingsError};
use shopmesh_shared::telemetry::TelemetrySettings;
use std::time::Duration;

/// The order service listens here unless `SHOPMESH_HTTP_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8083;

#[derive(Debug, Clone)]
pub struct Settings {
    pub core: CoreSettings,
    /// `SHOPMESH_RPC_TIMEOUT`, default 2s: how long to wait for the product service.
    pub rpc_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            core: CoreSettings::from_env(env, crate::SERVICE, DEFAULT_PORT)?,
            rpc_timeout: env.duration_or("SHOPMESH_RPC_TIMEOUT", Duration::from_secs(2))?,
        })
    }

    /// Every variable the service reads: [`Settings::from_env`]'s and
    /// telemetry's (read by `main`).
    pub fn variables() -> Vec<&'static str> {
        let mut names = CoreSettings::variables();
        names.push("SHOPMESH_RPC_TIMEOUT");
        names.extend_from_slice(TelemetrySettings::VARIABLES);
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_list_core_own_and_telemetry() {
        let names = Settings::variables();
        for name in [
            "DATABASE_URL",
            "NATS_URL",
            "SHOPMESH_RPC_TIMEOUT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            assert!(names.contains(&name), "{name}");
        }
    }
}
