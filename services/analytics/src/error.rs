//! The service's error type and its one mapping to problem responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shopmesh_shared::http::Problem;

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("invalid parameter {name}: {detail}")]
    InvalidParameter { name: &'static str, detail: String },
    #[error("{0}")]
    NotFound(String),
    #[error("a partition actor is not answering: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AnalyticsError {
    pub fn invalid(name: &'static str, detail: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name,
            detail: detail.into(),
        }
    }

    fn problem(&self) -> Problem {
        match self {
            AnalyticsError::InvalidParameter { name, detail } => {
                Problem::invalid_field(*name, detail.clone())
            }
            AnalyticsError::NotFound(detail) => Problem::not_found(detail.clone()),
            AnalyticsError::Unavailable(_) => {
                Problem::unavailable("the analytics partitions are not answering; retry later")
            }
            AnalyticsError::Unexpected(_) => Problem::internal(),
        }
    }
}

impl ResponseError for AnalyticsError {
    fn status_code(&self) -> StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(error = %format!("{self:#}"), cause = ?self, "request failed");
        }
        problem.error_response()
    }
}
