//! Database connections for every service: SQLite by default (a file in the
//! data folder), Postgres when `DATABASE_URL` says so, one `sqlx::AnyPool`
//! either way. SQL that must run on both follows the rules in the guide: `$N`
//! placeholders, BIGINT/TEXT columns, ids as TEXT, times as BIGINT ms.

use crate::settings::{Env, SettingsError};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// Where a service keeps its data.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`, or `sqlite://<SHOPMESH_DATA_DIR>/<service>.db`.
    pub url: String,
    pub kind: DatabaseKind,
    /// `DATABASE_MAX_CONNECTIONS`, default 8 (SQLite: 4, writes serialize anyway).
    pub max_connections: u32,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A Postgres URL can hold a password.
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("kind", &self.kind)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    match (rest.find('@'), rest.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            )
        }
        _ => url.to_owned(),
    }
}

impl DatabaseSettings {
    pub fn from_env(env: &Env, service: &str) -> Result<Self, SettingsError> {
        let url = match env.get("DATABASE_URL") {
            Some(url) => url.to_owned(),
            None => {
                let dir = PathBuf::from(env.string_or("SHOPMESH_DATA_DIR", "./data"));
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.join(format!("{service}.db")).display()
                )
            }
        };
        let kind = if url.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DatabaseKind::Postgres
        } else {
            return Err(SettingsError {
                variable: "DATABASE_URL".into(),
                value: redact_url(&url),
                expected: "a sqlite:// or postgres:// URL".into(),
            });
        };
        let default_connections = if kind == DatabaseKind::Sqlite { 4 } else { 8 };
        let max_connections = env.parse_with(
            "DATABASE_MAX_CONNECTIONS",
            default_connections,
            "a whole number from 1 to 100",
            |v| v.parse().ok().filter(|n| (1..=100).contains(n)),
        )?;
        Ok(Self {
            url,
            kind,
            max_connections,
        })
    }

    pub const VARIABLES: &'static [&'static str] = &[
        "DATABASE_URL",
        "SHOPMESH_DATA_DIR",
        "DATABASE_MAX_CONNECTIONS",
    ];
}

/// Opens the pool. For SQLite it creates the folder, and sets WAL mode and a
/// busy timeout on every connection so concurrent writers wait instead of
/// failing with "database is locked".
pub async fn connect(settings: &DatabaseSettings) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    if settings.kind == DatabaseKind::Sqlite
        && let Some(path) = sqlite_path(&settings.url)
        && let Some(parent) = path.parent()
    {
        std::fs::create_dir_all(parent)?;
    }
    let options = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5));
    let options = if settings.kind == DatabaseKind::Sqlite {
        // A connection to a local file does not go stale: the ping sqlx sends
        // before handing one out would be a second round trip to the
        // connection's worker thread on every query. Postgres keeps it: there
        // it finds connections the server or network dropped.
        options
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
    } else {
        options
    };
    options.connect(&settings.url).await
}

/// The `VALUES` list of a multi-row `INSERT`: `rows` groups of `columns`
/// numbered placeholders, `($1, $2), ($3, $4)`, the same on SQLite and
/// Postgres. Bind row by row, column by column.
pub fn values_placeholders(rows: usize, columns: usize) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            let separator = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{separator}${}", 1 + row * columns + column);
        }
        sql.push(')');
    }
    sql
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_placeholders_number_row_by_row() {
        assert_eq!(values_placeholders(1, 3), "($1, $2, $3)");
        assert_eq!(values_placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_placeholders(0, 2), "");
    }

    #[test]
    fn sqlite_in_the_data_folder_by_default() {
        let env = Env::from_pairs([("SHOPMESH_DATA_DIR", "/var/lib/shopmesh")]);
        let settings = DatabaseSettings::from_env(&env, "order").unwrap();
        assert_eq!(settings.kind, DatabaseKind::Sqlite);
        assert_eq!(settings.url, "sqlite:///var/lib/shopmesh/order.db?mode=rwc");
        assert_eq!(
            sqlite_path(&settings.url).unwrap(),
            PathBuf::from("/var/lib/shopmesh/order.db")
        );
    }

    #[test]
    fn postgres_from_database_url_and_passwords_stay_hidden() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://shop:s3cret@db:5432/shop")]);
        let settings = DatabaseSettings::from_env(&env, "order").unwrap();
        assert_eq!(settings.kind, DatabaseKind::Postgres);
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert_eq!(
            redact_url(&settings.url),
            "postgres://shop:***@db:5432/shop"
        );
    }

    #[test]
    fn an_unknown_scheme_names_the_variable() {
        let env = Env::from_pairs([("DATABASE_URL", "mysql://x")]);
        assert_eq!(
            DatabaseSettings::from_env(&env, "order")
                .unwrap_err()
                .variable,
            "DATABASE_URL"
        );
    }
}
