//! The product service's settings: the shared core plus what only this
//! service needs (the admin token, mandatory here, and the RPC concurrency).

use shopmesh_shared::service::CoreSettings;
use shopmesh_shared::settings::{Env, Secret, SettingsError};
use shopmesh_shared::telemetry::TelemetrySettings;
use std::time::Duration;

/// Port used when `SHOPMESH_HTTP_PORT` is not set.
pub const DEFAULT_PORT: u16 = 8082;

#[derive(Debug, Clone)]
pub struct Settings {
    pub core: CoreSettings,
    /// `SHOPMESH_ADMIN_TOKEN` (required): the bearer token catalogue writes need.
    pub admin_token: Secret,
    /// `SHOPMESH_RPC_MAX_INFLIGHT`, default 64: requests handled at once per
    /// NATS endpoint; more wait in the subscription, bounding database load.
    pub rpc_max_inflight: usize,
    /// `SHOPMESH_PRODUCT_CACHE_TTL`, default 2s (`0s` turns it off): how long a
    /// product read by id is served from memory. The bound on how stale a view
    /// is when another replica changed the product; this instance's own
    /// changes are seen at once.
    pub product_cache_ttl: Duration,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, SettingsError> {
        let core = CoreSettings::from_env(env, crate::NAME, DEFAULT_PORT)?;
        // Without it nobody could create a product: refuse to start rather than
        // run a catalogue that cannot be filled.
        let admin_token = core.auth.admin_token.clone().ok_or_else(|| SettingsError {
            variable: "SHOPMESH_ADMIN_TOKEN".into(),
            value: String::new(),
            expected: "the admin bearer token that product writes need (required)".into(),
        })?;
        let rpc_max_inflight = env.parse_with(
            "SHOPMESH_RPC_MAX_INFLIGHT",
            64,
            "a whole number from 1 to 4096",
            |v| v.parse().ok().filter(|n| (1..=4096).contains(n)),
        )?;
        let product_cache_ttl =
            env.duration_or("SHOPMESH_PRODUCT_CACHE_TTL", Duration::from_secs(2))?;
        Ok(Settings {
            core,
            admin_token,
            rpc_max_inflight,
            product_cache_ttl,
        })
    }

    /// Every variable the service reads: [`Settings::from_env`]'s and
    /// telemetry's (read by `main`).
    pub fn variables() -> Vec<&'static str> {
        let mut names = CoreSettings::variables();
        names.push("SHOPMESH_RPC_MAX_INFLIGHT");
        names.push("SHOPMESH_PRODUCT_CACHE_TTL");
        names.extend_from_slice(TelemetrySettings::VARIABLES);
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_admin_token_is_required() {
        let env = Env::from_pairs([("SHOPMESH_AUTH_KEY", KEY)]);
        let err = Settings::from_env(&env).unwrap_err();
        assert_eq!(err.variable, "SHOPMESH_ADMIN_TOKEN");
        assert!(err.to_string().contains("SHOPMESH_ADMIN_TOKEN"), "{err}");
    }

    #[test]
    fn defaults_and_the_token_are_read() {
        let env = Env::from_pairs([
            ("SHOPMESH_AUTH_KEY", KEY),
            ("SHOPMESH_ADMIN_TOKEN", "admin-secret"),
        ]);
        let settings = Settings::from_env(&env).unwrap();
        assert_eq!(settings.core.http.port, DEFAULT_PORT);
        assert_eq!(settings.admin_token.expose(), "admin-secret");
        assert_eq!(settings.rpc_max_inflight, 64);
        assert_eq!(settings.product_cache_ttl, Duration::from_secs(2));
        assert!(!format!("{settings:?}").contains("admin-secret"));
    }

    #[test]
    fn an_invalid_rpc_limit_names_its_variable() {
        let env = Env::from_pairs([
            ("SHOPMESH_AUTH_KEY", KEY),
            ("SHOPMESH_ADMIN_TOKEN", "admin-secret"),
            ("SHOPMESH_RPC_MAX_INFLIGHT", "0"),
        ]);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().variable,
            "SHOPMESH_RPC_MAX_INFLIGHT"
        );
    }

    #[test]
    fn variables_list_core_and_own() {
        let names = Settings::variables();
        for name in [
            "SHOPMESH_ADMIN_TOKEN",
            "SHOPMESH_AUTH_KEY",
            "DATABASE_URL",
            "NATS_URL",
            "SHOPMESH_OUTBOX_POLL",
            "SHOPMESH_RPC_MAX_INFLIGHT",
            "SHOPMESH_PRODUCT_CACHE_TTL",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            assert!(names.contains(&name), "{name}");
        }
    }
}
