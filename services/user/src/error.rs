//! `UserError`: every way a user-service request can fail, and the one place
//! where failures become RFC 9457 problem bodies. Server errors are logged
//! here with their cause chain; clients only ever see a generic detail.

use crate::domain::{InvalidEmail, InvalidPassword, InvalidUserName};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shopmesh_shared::http::Problem;

/// What login answers for a wrong password and an unknown e-mail alike, so
/// that the response does not tell which accounts exist.
pub const INVALID_CREDENTIALS: &str = "the e-mail address or password is not correct";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A request field failed validation.
    #[error("invalid field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("an account with this e-mail address already exists")]
    DuplicateEmail,
    #[error("{INVALID_CREDENTIALS}")]
    InvalidCredentials,
    /// A valid token names a user that is not (or no longer) stored.
    #[error("the user of this token does not exist")]
    UserNotFound,
    /// The database cannot be reached: a 503 that heals once it is back.
    #[error("the database is unavailable: {0:#}")]
    DatabaseUnavailable(anyhow::Error),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<anyhow::Error> for UserError {
    fn from(error: anyhow::Error) -> Self {
        if shopmesh_shared::db_outage::caused_by_outage(&error) {
            Self::DatabaseUnavailable(error)
        } else {
            Self::Unexpected(error)
        }
    }
}

impl From<InvalidEmail> for UserError {
    fn from(error: InvalidEmail) -> Self {
        Self::InvalidField {
            field: "email",
            reason: error.to_string(),
        }
    }
}

impl From<InvalidUserName> for UserError {
    fn from(error: InvalidUserName) -> Self {
        Self::InvalidField {
            field: "name",
            reason: error.to_string(),
        }
    }
}

impl From<InvalidPassword> for UserError {
    fn from(error: InvalidPassword) -> Self {
        Self::InvalidField {
            field: "password",
            reason: error.to_string(),
        }
    }
}

impl UserError {
    pub fn problem(&self) -> Problem {
        match self {
            UserError::InvalidField { field, reason } => {
                Problem::invalid_field(*field, reason.clone())
            }
            UserError::DuplicateEmail => Problem::conflict(self.to_string()).with_field("email"),
            UserError::InvalidCredentials => Problem::unauthorized(INVALID_CREDENTIALS),
            UserError::UserNotFound => Problem::not_found(self.to_string()),
            UserError::DatabaseUnavailable(_) => {
                Problem::unavailable("the user database cannot be reached; try again later")
            }
            UserError::Unexpected(_) => Problem::internal(),
        }
    }
}

impl ResponseError for UserError {
    fn status_code(&self) -> StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if let UserError::Unexpected(cause) | UserError::DatabaseUnavailable(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed unexpectedly");
        }
        self.problem().error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status_and_field() {
        let invalid: UserError = InvalidEmail::NotOneAt.into();
        let problem = invalid.problem();
        assert_eq!(
            (problem.status, problem.field.as_deref()),
            (400, Some("email"))
        );
        let duplicate = UserError::DuplicateEmail.problem();
        assert_eq!(
            (duplicate.status, duplicate.field.as_deref()),
            (409, Some("email"))
        );
        assert_eq!(UserError::InvalidCredentials.problem().status, 401);
        assert_eq!(UserError::UserNotFound.problem().status, 404);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let outage = UserError::from(anyhow::Error::new(sqlx::Error::Io(io)).context("find user"));
        assert_eq!(outage.problem().status, 503);
    }

    #[test]
    fn unexpected_errors_do_not_leak_their_cause() {
        let error = UserError::Unexpected(anyhow::anyhow!("connection refused to db:5432"));
        let problem = error.problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("5432"));
    }
}
