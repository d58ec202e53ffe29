//! The service's one error type for HTTP, and its mapping to problem bodies:
//! the only place where an error becomes a status code.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shopmesh_shared::events::ProductId;
use shopmesh_shared::http::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// A body field or query parameter was refused (400, naming it).
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// The query string could not be decoded at all.
    #[error("the query string cannot be decoded: {0}")]
    MalformedQuery(String),
    /// A PATCH with neither price nor stock.
    #[error("nothing to change: give price_cents, stock or both")]
    NothingToChange,
    #[error("product {0} does not exist")]
    NotFound(ProductId),
    /// The database cannot be reached: a 503 that heals once it is back.
    #[error("the database is unavailable: {0:#}")]
    DatabaseUnavailable(anyhow::Error),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<anyhow::Error> for ProductError {
    fn from(error: anyhow::Error) -> Self {
        if shopmesh_shared::db_outage::caused_by_outage(&error) {
            Self::DatabaseUnavailable(error)
        } else {
            Self::Unexpected(error)
        }
    }
}

impl ProductError {
    pub fn invalid(field: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::InvalidField {
            field,
            reason: reason.to_string(),
        }
    }

    pub fn problem(&self) -> Problem {
        match self {
            Self::InvalidField { field, reason } => Problem::invalid_field(*field, reason.clone()),
            Self::MalformedQuery(_) => Problem::new(
                StatusCode::BAD_REQUEST,
                "/problems/malformed-query",
                "Malformed query string",
                self.to_string(),
            ),
            Self::NothingToChange => Problem::new(
                StatusCode::BAD_REQUEST,
                "/problems/validation",
                "Invalid request",
                self.to_string(),
            ),
            Self::NotFound(_) => Problem::not_found(self.to_string()),
            Self::DatabaseUnavailable(_) => {
                Problem::unavailable("the product database cannot be reached; try again later")
            }
            Self::Unexpected(_) => Problem::internal(),
        }
    }
}

impl ResponseError for ProductError {
    fn status_code(&self) -> StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(error) | Self::DatabaseUnavailable(error) = self {
            // The cause chain goes to the log; the client gets a generic body.
            tracing::error!(error = format!("{error:#}"), "request failed");
        }
        self.problem().error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ProductError::invalid("name", "empty").status_code(), 400);
        assert_eq!(
            ProductError::invalid("name", "empty")
                .problem()
                .field
                .as_deref(),
            Some("name")
        );
        assert_eq!(
            ProductError::NotFound(ProductId::new_v7()).status_code(),
            404
        );
        assert_eq!(ProductError::NothingToChange.status_code(), 400);
        let outage = ProductError::from(
            anyhow::Error::new(sqlx::Error::PoolTimedOut).context("read product"),
        );
        assert_eq!(outage.status_code(), 503);
        let internal = ProductError::Unexpected(anyhow::anyhow!("db password=secret down"));
        assert_eq!(internal.status_code(), 500);
        assert!(!internal.problem().detail.contains("secret"));
    }
}
