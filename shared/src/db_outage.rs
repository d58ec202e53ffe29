//! Telling "the database cannot be reached" from "the database refused this
//! query": the first is a 503 that heals by itself once the database is back
//! (services keep running and their pools reconnect), the second a bug or a
//! conflict. Every service maps its database errors through these.

/// True when `error` means the database was out of reach or the connection
/// broke: connecting failed, the pool gave up waiting for a connection, or
/// Postgres reported a connection exception (class 08) or that it is
/// shutting down or starting (57P01-57P03).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// [`is_unavailable`] for a database error anywhere in `error`'s cause chain
/// (services that add context with `anyhow`).
pub fn caused_by_outage(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_unavailable)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_outages_and_refused_queries_are_not() {
        let reset = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_unavailable(&sqlx::Error::Io(reset())));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::Protocol("bad".into())));
        let wrapped = anyhow::Error::new(sqlx::Error::Io(reset())).context("read product");
        assert!(caused_by_outage(&wrapped));
        assert!(!caused_by_outage(&anyhow::anyhow!("no database involved")));
    }
}
