//! A fresh database per test: a SQLite file in a temp folder, and a Postgres
//! database created on the server named by `TEST_POSTGRES_URL` (dropped again
//! when the test ends).

use sqlx::Connection;
use sqlx::{AnyConnection, AssertSqlSafe};

pub use crate::db::DatabaseKind;

/// One database owned by one test.
pub struct TestDatabase {
    pub kind: DatabaseKind,
    /// A URL for `sqlx::AnyPool` (and for a service's `DATABASE_URL`).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres_admin: Option<(String, String)>,
}

impl TestDatabase {
    /// A new SQLite file, created on first connect.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for SQLite");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        Self {
            kind: DatabaseKind::Sqlite,
            url,
            _dir: Some(dir),
            postgres_admin: None,
        }
    }

    /// A new database on the Postgres server at `admin_url`. Panics with the
    /// reason when the server cannot be reached: with `TEST_POSTGRES_URL` set,
    /// Postgres tests must run, not vanish.
    pub async fn postgres(admin_url: &str) -> Self {
        sqlx::any::install_default_drivers();
        let name = format!("shopmesh_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AnyConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("TEST_POSTGRES_URL={admin_url} is unreachable: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let url = replace_database(admin_url, &name);
        Self {
            kind: DatabaseKind::Postgres,
            url,
            _dir: None,
            postgres_admin: Some((admin_url.to_owned(), name)),
        }
    }
}

/// Every database kind this run tests: SQLite always, Postgres when
/// `TEST_POSTGRES_URL` is set.
pub async fn test_databases() -> Vec<TestDatabase> {
    sqlx::any::install_default_drivers();
    let mut databases = vec![TestDatabase::sqlite()];
    if let Some(url) = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        databases.push(TestDatabase::postgres(&url).await);
    }
    databases
}

/// `postgres://u@h:5432/postgres?x=y` with another database name.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres_admin.take() else {
            return;
        };
        // Drop runs outside async; a short-lived runtime on its own thread
        // works whether or not the test's runtime is still alive.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = AnyConnection::connect(&admin_url).await.ok()?;
                sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()
            })
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u@h:5432?sslmode=disable", "t2"),
            "postgres://u@h:5432/t2?sslmode=disable"
        );
    }
}
