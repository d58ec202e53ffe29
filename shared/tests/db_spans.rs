//! Database spans as Jaeger would receive them: statements run through
//! `db_span::traced` on SQLite (and Postgres when `TEST_POSTGRES_URL` is set)
//! inside a request span, exported by the real telemetry setup over OTLP to an
//! in-process receiver that decodes the protobuf.
//!
//! Each statement's span must be a CLIENT child of the request span named
//! `<operation> <table>`, with the database semantic-convention attributes,
//! the query text and never a bound value; a failing statement carries its
//! error class and the ERROR status; a statement outside any span makes none.
//! (One test per file: the tracing subscriber is global to the process.)

use shopmesh_shared::db_span::traced;
use shopmesh_shared::settings::Env;
use shopmesh_shared::telemetry::{self, TelemetrySettings};
use shopmesh_shared::testkit::{DatabaseKind, OtlpReceiver, ReceivedSpan, test_databases};
use sqlx::Row;
use sqlx::any::AnyPoolOptions;
use tracing::Instrument;

/// OTLP `Span.kind` and `Status.code` values.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;

/// Bound, stored and read back, never in a span.
const BOUND_SECRET: &str = "bound-value-that-must-stay-out-of-traces";

const INSERT: &str = "INSERT INTO gadgets (id, secret, count) VALUES ($1, $2, 0)";
const SELECT: &str = "SELECT id, secret, count FROM gadgets WHERE id = $1";
const UPDATE: &str = "UPDATE gadgets SET count = count + $1 WHERE id = $2 RETURNING count";
const DELETE: &str = "DELETE FROM gadgets WHERE id = $1";
const OUTSIDE: &str = "SELECT COUNT(*) FROM gadgets_outside";

/// Every attribute and event value of `span`, as text.
fn values(span: &ReceivedSpan) -> Vec<String> {
    let attributes = span
        .span
        .attributes
        .iter()
        .chain(span.span.events.iter().flat_map(|e| e.attributes.iter()));
    attributes.map(|kv| format!("{:?}", kv.value)).collect()
}

/// Runs the statements of one request on `pool`, inside the request span.
async fn one_request(pool: &sqlx::AnyPool, name: &str) {
    let request = tracing::info_span!("request", otel.name = name, otel.kind = "server");
    async {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(INSERT)
            .bind("g1")
            .bind(BOUND_SECRET)
            .execute(traced(&mut *tx))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let row = sqlx::query(SELECT)
            .bind("g1")
            .fetch_one(traced(pool))
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(1), BOUND_SECRET);
        let count: i64 = sqlx::query(UPDATE)
            .bind(3_i64)
            .bind("g1")
            .fetch_optional(traced(pool))
            .await
            .unwrap()
            .unwrap()
            .get(0);
        assert_eq!(count, 3);
        // The same id again: a primary-key violation.
        let duplicate = sqlx::query(INSERT)
            .bind("g1")
            .bind(BOUND_SECRET)
            .execute(traced(pool))
            .await;
        assert!(duplicate.is_err());
        let rows = sqlx::query(DELETE)
            .bind("g1")
            .execute(traced(pool))
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(rows, 1);
    }
    .instrument(request)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_become_client_spans_under_the_request_that_ran_them() {
    let receiver = OtlpReceiver::start().await;
    let env = Env::from_pairs([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("RUST_LOG", "warn"),
    ]);
    let settings = TelemetrySettings::from_env(&env, "db-span-test", "0.0.0").unwrap();
    let telemetry = telemetry::init(&settings).unwrap();

    let databases = test_databases().await;
    for database in &databases {
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&database.url)
            .await
            .unwrap();
        for table in ["gadgets", "gadgets_outside"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {table} (id TEXT PRIMARY KEY, secret TEXT NOT NULL, count BIGINT NOT NULL)"
            )))
            .execute(traced(&pool))
            .await
            .unwrap();
        }
        one_request(&pool, &format!("request {:?}", database.kind)).await;
        // No span around it: no trace of its own either.
        let outside: i64 = sqlx::query(OUTSIDE)
            .fetch_one(traced(&pool))
            .await
            .unwrap()
            .get(0);
        assert_eq!(outside, 0);
        pool.close().await;
    }
    telemetry.shutdown();
    let spans = receiver.spans();

    for database in &databases {
        let system = match database.kind {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgresql",
        };
        let request_name = format!("request {:?}", database.kind);
        let request = spans
            .iter()
            .find(|s| s.span.name == request_name)
            .unwrap_or_else(|| panic!("no {request_name:?} span"));
        assert_eq!(request.span.kind, SERVER);
        let mut children: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| s.span.parent_span_id == request.span.span_id)
            .collect();
        children.sort_by_key(|s| s.span.start_time_unix_nano);
        let names: Vec<&str> = children.iter().map(|s| s.span.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "INSERT gadgets",
                "SELECT gadgets",
                "UPDATE gadgets",
                "INSERT gadgets",
                "DELETE gadgets"
            ],
            "{system}: the request's children, in order"
        );
        let expected = [
            ("INSERT", INSERT),
            ("SELECT", SELECT),
            ("UPDATE", UPDATE),
            ("INSERT", INSERT),
            ("DELETE", DELETE),
        ];
        for (span, (operation, sql)) in children.iter().zip(expected) {
            assert_eq!(span.span.kind, CLIENT, "{span:?}");
            assert_eq!(span.span.trace_id, request.span.trace_id);
            assert_eq!(span.service_name, "db-span-test");
            assert_eq!(span.attribute("db.system.name").as_deref(), Some(system));
            assert_eq!(
                span.attribute("db.operation.name").as_deref(),
                Some(operation)
            );
            assert_eq!(
                span.attribute("db.collection.name").as_deref(),
                Some("gadgets")
            );
            // The literal 0 of the INSERT and nothing bound.
            assert_eq!(
                span.attribute("db.query.text").as_deref(),
                Some(sql.replace(", 0)", ", ?)").as_str())
            );
            for value in values(span) {
                assert!(!value.contains(BOUND_SECRET), "{value}");
            }
        }
        for ok in [0, 1, 2, 4] {
            let status = children[ok].span.status.as_ref().map_or(0, |s| s.code);
            assert_ne!(status, STATUS_ERROR, "{:?}", children[ok]);
            assert_eq!(children[ok].attribute("error.type"), None);
        }
        let failed = children[3];
        assert_eq!(
            failed.span.status.as_ref().map(|s| s.code),
            Some(STATUS_ERROR)
        );
        let code = failed
            .attribute("db.response.status_code")
            .expect("the database's error code");
        // SQLSTATE unique_violation; SQLite's SQLITE_CONSTRAINT_PRIMARYKEY.
        let expected_code = match database.kind {
            DatabaseKind::Sqlite => "1555",
            DatabaseKind::Postgres => "23505",
        };
        assert_eq!(code, expected_code);
        assert_eq!(
            failed.attribute("error.type").as_deref(),
            Some(expected_code)
        );
    }

    // Statements outside a span: the schema set-up and the lone count.
    for span in &spans {
        let text = span.attribute("db.query.text").unwrap_or_default();
        assert!(
            !text.contains("gadgets_outside"),
            "a statement outside any span was traced: {span:?}"
        );
        for value in values(span) {
            assert!(!value.contains(BOUND_SECRET), "{value}");
        }
    }
    assert_eq!(
        spans.len(),
        databases.len() * 6,
        "a request span and its five statements per database"
    );
}
