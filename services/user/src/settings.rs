//! The user service's settings: the shared [`CoreSettings`] plus the cost of
//! password hashing. Everything comes from environment variables; an invalid
//! value is refused with an error naming the variable.

use shopmesh_shared::service::CoreSettings;
use shopmesh_shared::settings::{Env, SettingsError};
use shopmesh_shared::telemetry::TelemetrySettings;

/// The port the service listens on without `SHOPMESH_HTTP_PORT`.
pub const DEFAULT_PORT: u16 = 8081;

/// Everything the user service reads at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub core: CoreSettings,
    pub password: PasswordSettings,
}

/// argon2id cost and how many hashes may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordSettings {
    /// `SHOPMESH_PASSWORD_MEMORY_KIB`, default 19456 (19 MiB, OWASP's argon2id
    /// baseline).
    pub memory_kib: u32,
    /// `SHOPMESH_PASSWORD_ITERATIONS`, default 2.
    pub iterations: u32,
    /// `SHOPMESH_PASSWORD_CONCURRENCY`, default one per core: each hash holds
    /// its memory cost for tens of milliseconds, so a burst of logins must
    /// queue rather than exhaust memory and the blocking thread pool.
    pub concurrency: usize,
}

impl PasswordSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Self {
            memory_kib: env.parse_with(
                "SHOPMESH_PASSWORD_MEMORY_KIB",
                19_456,
                "a whole number of KiB from 64 to 4194304",
                |v| v.parse().ok().filter(|n| (64..=4_194_304).contains(n)),
            )?,
            iterations: env.parse_with(
                "SHOPMESH_PASSWORD_ITERATIONS",
                2,
                "a whole number from 1 to 64",
                |v| v.parse().ok().filter(|n| (1..=64).contains(n)),
            )?,
            concurrency: env.parse_with(
                "SHOPMESH_PASSWORD_CONCURRENCY",
                cores,
                "a whole number from 1 to 1024",
                |v| v.parse().ok().filter(|n| (1..=1024).contains(n)),
            )?,
        };
        Ok(settings)
    }

    pub const VARIABLES: &'static [&'static str] = &[
        "SHOPMESH_PASSWORD_MEMORY_KIB",
        "SHOPMESH_PASSWORD_ITERATIONS",
        "SHOPMESH_PASSWORD_CONCURRENCY",
    ];
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, SettingsError> {
        let core = CoreSettings::from_env(env, "user", DEFAULT_PORT)?;
        // A zero lifetime would issue tokens that are already expired.
        if core.auth.token_ttl.as_secs() == 0 {
            return Err(SettingsError {
                variable: "SHOPMESH_TOKEN_TTL".into(),
                value: env.get("SHOPMESH_TOKEN_TTL").unwrap_or_default().into(),
                expected: "a duration of at least 1s".into(),
            });
        }
        Ok(Settings {
            core,
            password: PasswordSettings::from_env(env)?,
        })
    }

    /// Every variable the service reads: the core's, the password settings'
    /// and telemetry's (read by `main`).
    pub fn variables() -> Vec<&'static str> {
        let mut names = CoreSettings::variables();
        names.extend_from_slice(PasswordSettings::VARIABLES);
        names.extend_from_slice(TelemetrySettings::VARIABLES);
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_listen_on_8081_with_owasp_argon2_cost() {
        let settings = Settings::from_env(&Env::from_pairs([("SHOPMESH_AUTH_KEY", KEY)])).unwrap();
        assert_eq!(settings.core.http.port, DEFAULT_PORT);
        assert_eq!(settings.password.memory_kib, 19_456);
        assert_eq!(settings.password.iterations, 2);
        assert!(settings.password.concurrency >= 1);
    }

    #[test]
    fn a_missing_auth_key_names_the_variable() {
        let error = Settings::from_env(&Env::default()).unwrap_err();
        assert_eq!(error.variable, "SHOPMESH_AUTH_KEY");
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (variable, value) in [
            ("SHOPMESH_PASSWORD_MEMORY_KIB", "8"),
            ("SHOPMESH_PASSWORD_ITERATIONS", "0"),
            ("SHOPMESH_PASSWORD_CONCURRENCY", "many"),
            ("SHOPMESH_TOKEN_TTL", "0s"),
        ] {
            let env = Env::from_pairs([("SHOPMESH_AUTH_KEY", KEY), (variable, value)]);
            assert_eq!(
                Settings::from_env(&env).unwrap_err().variable,
                variable,
                "{variable}={value}"
            );
        }
    }

    #[test]
    fn variables_lists_what_is_read() {
        let names = Settings::variables();
        for name in [
            "SHOPMESH_AUTH_KEY",
            "DATABASE_URL",
            "NATS_URL",
            "SHOPMESH_PASSWORD_MEMORY_KIB",
            "SHOPMESH_PASSWORD_ITERATIONS",
            "SHOPMESH_PASSWORD_CONCURRENCY",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            assert!(names.contains(&name), "{name}");
        }
    }
}
