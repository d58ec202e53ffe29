//! Database CLIENT spans, following the OpenTelemetry database semantic
//! conventions, for every statement a service runs through sqlx.
//!
//! Wrap the executor where the statement runs:
//! `sqlx::query("..").bind(..).fetch_one(traced(pool))`, or
//! `traced(&mut *conn)` inside a transaction. [`Traced`] is itself an sqlx
//! `Executor`; it names a span after the statement and runs the real
//! executor inside it, so the span is a child of the request, RPC or
//! consumer span that ran the statement, and it covers the time to the last
//! row.
//!
//! The span is named `<operation> <table>` (`SELECT products`), has kind
//! CLIENT and the attributes `db.system.name` (`sqlite` or `postgresql`),
//! `db.operation.name`, `db.collection.name` (the first table the statement
//! names, as the conventions ask when it is parsed from the text) and
//! `db.query.text`; a failure adds `error.type`, `db.response.status_code`
//! (the SQLSTATE or SQLite code) and the ERROR status. The error message is
//! not recorded: database messages quote values ("Key (email)=(..)").
//!
//! Bound values are never read: the arguments pass through untouched. The
//! query text has placeholders for every value the services bind, and any
//! literal left in it (`status = 'placed'`, a number) is replaced by `?` as
//! well, so a statement written later with a value pasted into it still
//! cannot carry that value into a trace.
//!
//! A statement run outside any span (the outbox relay's polling, schema set-up
//! at start) gets no span: a root trace per poll would bury the traces that
//! matter, and those statements belong to no request.

use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream};
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::error::BoxDynError;
use sqlx::{Any, AnyConnection, AnyPool, Describe, Either, Error, Execute, Executor, SqlStr};
use std::pin::Pin;
use std::task::{Context, Poll};

/// `executor` with a CLIENT span around every statement it runs.
pub fn traced<E: DatabaseSystem>(executor: E) -> Traced<E> {
    Traced(executor)
}

/// An sqlx executor that records a database span per statement; see
/// [`traced`].
#[derive(Debug)]
pub struct Traced<E>(E);

/// Which database product an executor talks to, as `db.system.name` says it.
pub trait DatabaseSystem {
    fn system_name(&self) -> &'static str;
}

impl DatabaseSystem for &AnyPool {
    fn system_name(&self) -> &'static str {
        system_of_scheme(self.connect_options().database_url.scheme())
    }
}

impl DatabaseSystem for &mut AnyConnection {
    fn system_name(&self) -> &'static str {
        system_of_backend(self.backend_name())
    }
}

fn system_of_scheme(scheme: &str) -> &'static str {
    match scheme {
        "sqlite" => "sqlite",
        "postgres" | "postgresql" => "postgresql",
        _ => "other_sql",
    }
}

/// The Any driver's backend names (`<Sqlite as Database>::NAME` and
/// `<Postgres as Database>::NAME`).
fn system_of_backend(name: &str) -> &'static str {
    if name.eq_ignore_ascii_case("sqlite") {
        "sqlite"
    } else if name.eq_ignore_ascii_case("postgresql") || name.eq_ignore_ascii_case("postgres") {
        "postgresql"
    } else {
        "other_sql"
    }
}

/// A statement taken apart so that its text can be read before it runs (the
/// `Execute` trait hands the text out only by value).
struct Statement {
    sql: SqlStr,
    arguments: Option<AnyArguments>,
    persistent: bool,
}

impl Statement {
    fn take<'q>(mut query: impl Execute<'q, Any>) -> Result<Self, Error> {
        let arguments = query.take_arguments().map_err(Error::Encode)?;
        let persistent = query.persistent();
        Ok(Self {
            sql: query.sql(),
            arguments,
            persistent,
        })
    }
}

impl Execute<'_, Any> for Statement {
    fn sql(self) -> SqlStr {
        self.sql
    }

    // The Any driver prepares from the text and ignores a cached statement.
    fn statement(&self) -> Option<&AnyStatement> {
        None
    }

    fn take_arguments(&mut self) -> Result<Option<AnyArguments>, BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// The span of one statement; `None` outside any span (see the module notes).
fn statement_span(sql: &str, system: impl FnOnce() -> &'static str) -> Option<tracing::Span> {
    if tracing::Span::current().is_none() {
        return None;
    }
    // Only now: a pool's system is read from its options behind a lock.
    let system = system();
    let summary = StatementSummary::of(sql, system);
    Some(tracing::info_span!(
        "database statement",
        otel.name = %summary.span_name,
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = summary.operation.as_deref(),
        db.collection.name = summary.collection.as_deref(),
        db.query.text = %summary.text,
        db.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    ))
}

fn record_error(span: &tracing::Span, error: &Error) {
    let code = match error {
        Error::Database(error) => error.code().map(|code| code.into_owned()),
        _ => None,
    };
    // The conventions use the database's own code as the error class when
    // there is one.
    let class = code
        .clone()
        .unwrap_or_else(|| error_class(error).to_owned());
    if let Some(code) = code {
        span.record("db.response.status_code", code);
    }
    span.record("error.type", class);
    span.record("otel.status_code", "ERROR");
}

fn error_class(error: &Error) -> &'static str {
    match error {
        Error::Configuration(_) => "configuration",
        Error::Database(_) => "database",
        Error::Io(_) => "io",
        Error::Tls(_) => "tls",
        Error::Protocol(_) => "protocol",
        Error::RowNotFound => "row_not_found",
        Error::TypeNotFound { .. } => "type_not_found",
        Error::ColumnIndexOutOfBounds { .. } => "column_index_out_of_bounds",
        Error::ColumnNotFound(_) => "column_not_found",
        Error::ColumnDecode { .. } => "column_decode",
        Error::Encode(_) => "encode",
        Error::Decode(_) => "decode",
        Error::PoolTimedOut => "pool_timed_out",
        Error::PoolClosed => "pool_closed",
        Error::WorkerCrashed => "worker_crashed",
        _ => "other",
    }
}

/// A row stream that runs inside its statement's span and records a failure
/// on it; the span ends when the stream is dropped.
struct InSpan<S> {
    stream: S,
    span: tracing::Span,
}

impl<S, T> Stream for InSpan<S>
where
    S: Stream<Item = Result<T, Error>> + Unpin,
{
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let polled = Pin::new(&mut this.stream).poll_next(cx);
        if let Poll::Ready(Some(Err(error))) = &polled {
            record_error(&this.span, error);
        }
        polled
    }
}

impl<'c, E> Executor<'c> for Traced<E>
where
    E: Executor<'c, Database = Any> + DatabaseSystem,
{
    type Database = Any;

    // `execute`, `fetch` and `fetch_all` run through this one.
    fn fetch_many<'e, 'q: 'e, Q>(
        self,
        query: Q,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        'c: 'e,
        Q: 'q + Execute<'q, Any>,
    {
        let Traced(inner) = self;
        let statement = match Statement::take(query) {
            Ok(statement) => statement,
            Err(error) => return Box::pin(futures::stream::once(async move { Err(error) })),
        };
        match statement_span(statement.sql.as_str(), || inner.system_name()) {
            None => inner.fetch_many(statement),
            Some(span) => {
                // Entered while the executor starts too: SQLite's worker
                // takes the caller's span when the command is sent.
                let stream = span.in_scope(|| inner.fetch_many(statement));
                Box::pin(InSpan { stream, span })
            }
        }
    }

    // `fetch_one` runs through this one.
    fn fetch_optional<'e, 'q: 'e, Q>(self, query: Q) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'c: 'e,
        Q: 'q + Execute<'q, Any>,
    {
        use tracing::Instrument;
        let Traced(inner) = self;
        let statement = match Statement::take(query) {
            Ok(statement) => statement,
            Err(error) => return Box::pin(async move { Err(error) }),
        };
        match statement_span(statement.sql.as_str(), || inner.system_name()) {
            None => inner.fetch_optional(statement),
            Some(span) => {
                let running = span.in_scope(|| inner.fetch_optional(statement));
                Box::pin(async move {
                    let result = running.instrument(span.clone()).await;
                    if let Err(error) = &result {
                        record_error(&span, error);
                    }
                    result
                })
            }
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, Error>>
    where
        'c: 'e,
    {
        self.0.prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'c: 'e,
    {
        self.0.describe(sql)
    }
}

/// What the span says about a statement.
#[derive(Debug, PartialEq, Eq)]
struct StatementSummary {
    span_name: String,
    operation: Option<String>,
    collection: Option<String>,
    /// The statement on one line, with every literal value replaced by `?`.
    text: String,
}

impl StatementSummary {
    fn of(sql: &str, system: &'static str) -> Self {
        let text = without_literals(sql);
        let words = words(&text);
        let operation = words
            .first()
            .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
            .map(|w| w.to_ascii_uppercase());
        let collection = operation
            .as_deref()
            .and_then(|op| first_collection(op, &words))
            .map(str::to_owned);
        let span_name = match (&operation, &collection) {
            (Some(operation), Some(collection)) => format!("{operation} {collection}"),
            (Some(operation), None) => operation.clone(),
            // The conventions' last resort.
            (None, _) => system.to_owned(),
        };
        Self {
            span_name,
            operation,
            collection,
            text,
        }
    }
}

/// `sql` on one line without comments, string, dollar-quoted and numeric
/// literals (each becomes `?`); `$N` placeholders and identifiers, quoted or
/// not, stay as written.
fn without_literals(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut space = false;
    let mut i = 0;
    let in_word = |out: &String| {
        out.chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            space = true;
            continue;
        }
        if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
            space = true;
            continue;
        }
        // Comments and runs of whitespace become one space between words.
        if std::mem::take(&mut space) && !out.is_empty() {
            out.push(' ');
        }
        if c == '\'' {
            // A doubled quote is an escaped quote inside the literal.
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push('?');
            continue;
        }
        if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' {
                    if chars.get(i + 1) == Some(&'"') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
            continue;
        }
        if c == '$' && !in_word(&out) {
            if next.is_some_and(|n| n.is_ascii_digit()) {
                out.push('$');
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    out.push(chars[i]);
                    i += 1;
                }
                continue;
            }
            // `$tag$ .. $tag$` (Postgres dollar quoting).
            let tag_end = chars[i + 1..]
                .iter()
                .position(|&t| !(t.is_alphanumeric() || t == '_'))
                .map(|p| i + 1 + p);
            if let Some(tag_end) = tag_end.filter(|&e| chars[e] == '$') {
                let tag: Vec<char> = chars[i..=tag_end].to_vec();
                let mut j = tag_end + 1;
                while j < chars.len() && !chars[j..].starts_with(&tag) {
                    j += 1;
                }
                i = (j + tag.len()).min(chars.len());
                out.push('?');
                continue;
            }
        }
        if c.is_ascii_digit() && !in_word(&out) {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push('?');
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The statement's words: identifiers (dotted or quoted) and keywords, and
/// each other character on its own.
fn words(text: &str) -> Vec<&str> {
    let word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '$';
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut end = start + c.len_utf8();
        if c == '"' {
            for (i, d) in chars.by_ref() {
                end = i + d.len_utf8();
                if d == '"' {
                    break;
                }
            }
        } else if word_char(c) {
            while let Some(&(i, d)) = chars.peek() {
                if !word_char(d) {
                    break;
                }
                end = i + d.len_utf8();
                chars.next();
            }
        }
        words.push(&text[start..end]);
    }
    words
}

fn is_identifier(word: &str) -> bool {
    word.starts_with('"')
        || word
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The first table the statement names, by its operation's grammar.
fn first_collection<'a>(operation: &str, words: &[&'a str]) -> Option<&'a str> {
    let after = |keyword: &str| {
        words
            .windows(2)
            .find(|pair| pair[0].eq_ignore_ascii_case(keyword) && is_identifier(pair[1]))
            .map(|pair| pair[1])
    };
    let skipping_if_exists = |from: usize| {
        words[from..].iter().copied().find(|w| {
            is_identifier(w)
                && !["IF", "NOT", "EXISTS", "ONLY"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
        })
    };
    match operation {
        "SELECT" | "DELETE" => after("FROM"),
        "INSERT" | "REPLACE" => after("INTO"),
        "UPDATE" => skipping_if_exists(1),
        "CREATE" | "DROP" | "ALTER" => {
            let kind = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("TABLE") || w.eq_ignore_ascii_case("INDEX"))?;
            if words[kind].eq_ignore_ascii_case("INDEX") {
                after("ON")
            } else {
                skipping_if_exists(kind + 1)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(sql: &str) -> (String, Option<String>, Option<String>, String) {
        let s = StatementSummary::of(sql, "sqlite");
        (s.span_name, s.operation, s.collection, s.text)
    }

    #[test]
    fn names_follow_operation_and_first_table() {
        let cases = [
            (
                "SELECT id, password_hash FROM users WHERE email = $1",
                "SELECT users",
            ),
            (
                "SELECT o.id, l.name FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.id = $1",
                "SELECT orders",
            ),
            (
                "SELECT COUNT(*) FROM products WHERE category = $1",
                "SELECT products",
            ),
            (
                "INSERT INTO cart_items (user_id) VALUES ($1) ON CONFLICT (user_id) DO UPDATE SET quantity = cart_items.quantity + excluded.quantity RETURNING quantity",
                "INSERT cart_items",
            ),
            (
                "UPDATE products SET stock = stock - $1 WHERE id = $3 AND stock >= $1 RETURNING name",
                "UPDATE products",
            ),
            (
                "DELETE FROM reservations WHERE order_id = $1 RETURNING product_id",
                "DELETE reservations",
            ),
            (
                "delete from cart_items where user_id = $1",
                "DELETE cart_items",
            ),
            ("SELECT 1", "SELECT"),
            (
                "CREATE TABLE IF NOT EXISTS shopmesh_outbox (seq BIGSERIAL PRIMARY KEY)",
                "CREATE shopmesh_outbox",
            ),
            (
                "CREATE INDEX IF NOT EXISTS shopmesh_outbox_pending ON shopmesh_outbox (published_at_ms, seq)",
                "CREATE shopmesh_outbox",
            ),
            (
                "SELECT * FROM \"Odd Table\" WHERE x = $1",
                "SELECT \"Odd Table\"",
            ),
            ("SELECT * FROM public.products", "SELECT public.products"),
            ("SELECT x FROM (SELECT 1 AS x) sub", "SELECT"),
            ("", "sqlite"),
        ];
        for (sql, name) in cases {
            assert_eq!(summary(sql).0, name, "{sql}");
        }
        let (_, operation, collection, _) = summary("UPDATE orders SET status = 'cancelled'");
        assert_eq!(operation.as_deref(), Some("UPDATE"));
        assert_eq!(collection.as_deref(), Some("orders"));
    }

    #[test]
    fn literal_values_never_reach_the_text() {
        let text = |sql| summary(sql).3;
        assert_eq!(
            text(
                "UPDATE orders SET status = 'cancelled', cancelled_at_ms = $1\n   WHERE id = $2 AND status = 'placed'"
            ),
            "UPDATE orders SET status = ?, cancelled_at_ms = $1 WHERE id = $2 AND status = ?"
        );
        assert_eq!(
            text("INSERT INTO products (a, b, c) VALUES ($1, 0, 0.5)"),
            "INSERT INTO products (a, b, c) VALUES ($1, ?, ?)"
        );
        assert_eq!(
            text("SELECT t1.col2 FROM t1 WHERE name LIKE $12 ESCAPE '\\' LIMIT 10"),
            "SELECT t1.col2 FROM t1 WHERE name LIKE $12 ESCAPE ? LIMIT ?"
        );
        assert_eq!(
            text(
                "SELECT 'it''s a secret' -- and 'this' too\n FROM users /* hunter2 */ WHERE x = $body$hunter2$body$"
            ),
            "SELECT ? FROM users WHERE x = ?"
        );
        assert_eq!(
            text("SELECT \"a\"\"b\" FROM x WHERE y = -42"),
            "SELECT \"a\"\"b\" FROM x WHERE y = -?"
        );
        // An unterminated literal still hides what follows it.
        assert_eq!(text("SELECT 'hunter2"), "SELECT ?");
    }

    #[test]
    fn systems_by_the_conventions_names() {
        assert_eq!(system_of_scheme("sqlite"), "sqlite");
        assert_eq!(system_of_scheme("postgres"), "postgresql");
        assert_eq!(system_of_scheme("postgresql"), "postgresql");
        assert_eq!(system_of_backend("SQLite"), "sqlite");
        assert_eq!(system_of_backend("PostgreSQL"), "postgresql");
        assert_eq!(system_of_backend("MySQL"), "other_sql");
    }

    #[test]
    fn no_span_outside_a_span() {
        // No subscriber and no current span here: nothing is created.
        assert!(statement_span("SELECT 1", || "sqlite").is_none());
    }
}
