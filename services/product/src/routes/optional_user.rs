//! The caller on endpoints where signing in is optional: anonymous without an
//! `Authorization` header, the user with a valid token, and a 401 with an
//! invalid one (a broken token is a client bug, not an anonymous visit).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use shopmesh_shared::events::UserId;
use shopmesh_shared::http::{AuthenticatedUser, Problem};
use std::future::{Ready, ready};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalUser(pub Option<UserId>);

impl FromRequest for OptionalUser {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            return ready(Ok(OptionalUser(None)));
        }
        let user = AuthenticatedUser::from_request(req, payload).into_inner();
        ready(user.map(|user| OptionalUser(Some(user.0))))
    }
}
