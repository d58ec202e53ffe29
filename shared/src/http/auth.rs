//! Authentication extractors: a signed user token, or the admin token.

use super::Problem;
use crate::auth::{TokenError, TokenKey, constant_time_eq, now_seconds};
use crate::events::UserId;
use crate::settings::Secret;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use std::future::{Ready, ready};

fn bearer(req: &HttpRequest) -> Result<&str, Problem> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        Problem::unauthorized("an Authorization: Bearer <token> header is required")
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::unauthorized("the Authorization header must be 'Bearer <token>'"))
}

/// The user a valid session token names. Needs a [`TokenKey`] in `app_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedUser(pub UserId);

impl AuthenticatedUser {
    fn extract(req: &HttpRequest) -> Result<Self, Problem> {
        let key = req.app_data::<TokenKey>().ok_or_else(Problem::internal)?;
        let token = bearer(req)?;
        key.verify(token, now_seconds())
            .map(|claims| Self(claims.sub))
            .map_err(|e| match e {
                TokenError::Expired => Problem::unauthorized("the token has expired; log in again"),
                TokenError::BadSignature | TokenError::Malformed => {
                    Problem::unauthorized("the token is not valid")
                }
            })
    }
}

impl FromRequest for AuthenticatedUser {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::extract(req))
    }
}

/// The admin token, configured per deployment; product writes need it.
#[derive(Clone)]
pub struct AdminToken(pub Secret);

impl AdminToken {
    /// Ok when the request carries this admin token.
    pub fn check(&self, req: &HttpRequest) -> Result<(), Problem> {
        let token = bearer(req)?;
        if constant_time_eq(token.as_bytes(), self.0.expose().as_bytes()) {
            Ok(())
        } else {
            Err(Problem::forbidden("this operation needs the admin token"))
        }
    }
}

/// Extracting `RequireAdmin` fails unless the request carries the
/// [`AdminToken`] in `app_data`.
#[derive(Debug, Clone, Copy)]
pub struct RequireAdmin;

impl FromRequest for RequireAdmin {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.app_data::<AdminToken>() {
            Some(admin) => admin.check(req).map(|()| RequireAdmin),
            None => Err(Problem::internal()),
        };
        ready(result)
    }
}
