//! `POST /sessions`: log in with e-mail and password, get a signed token
//! that every service verifies locally.

use crate::SERVICE;
use crate::domain::EmailAddress;
use crate::error::UserError;
use crate::password::PasswordHasher;
use crate::storage;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use shopmesh_shared::auth::{TokenKey, now_seconds};
use shopmesh_shared::behaviour::BehaviourPublisher;
use shopmesh_shared::events::{Event, EventMeta, UserLoggedIn};
use shopmesh_shared::http::JsonBody;
use shopmesh_shared::settings::Secret;
use sqlx::AnyPool;

/// Issues session tokens: the shared key and the tokens' lifetime.
#[derive(Debug, Clone)]
pub struct SessionIssuer {
    pub key: TokenKey,
    pub ttl_seconds: i64,
}

/// The body of `POST /sessions`. No `Debug`: it holds a plain password.
#[derive(Deserialize)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// A login whose e-mail address is well formed. The password is only ever
/// compared with the stored hash, so it is not held to the registration policy.
pub struct Login {
    pub email: EmailAddress,
    pub password: Secret,
}

impl LoginRequest {
    /// The checks a login passes before the database is asked; public so that
    /// the fuzz harness runs exactly these.
    pub fn validate(self) -> Result<Login, UserError> {
        Ok(Login {
            email: EmailAddress::parse(&self.email)?,
            password: Secret::new(self.password),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionResponse {
    pub token: String,
    pub expires_at_ms: i64,
}

/// A wrong password and an unknown e-mail get the same answer after the same
/// work (the hasher verifies against a dummy hash for unknown accounts).
#[tracing::instrument(
    name = "log in",
    skip_all,
    fields(user.id = tracing::field::Empty)
)]
pub async fn login(
    body: JsonBody<LoginRequest>,
    pool: web::Data<AnyPool>,
    hasher: web::Data<PasswordHasher>,
    issuer: web::Data<SessionIssuer>,
    behaviour: web::Data<BehaviourPublisher>,
) -> Result<HttpResponse, UserError> {
    let Login { email, password } = body.into_inner().validate()?;
    let credentials = storage::credentials_by_email(&pool, &email).await?;
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    let verified = hasher.verify(password, stored).await?;
    let user_id = match credentials {
        Some(credentials) if verified => credentials.id,
        _ => {
            tracing::info!("login refused");
            return Err(UserError::InvalidCredentials);
        }
    };
    tracing::Span::current().record("user.id", tracing::field::display(user_id));

    let now = now_seconds();
    let token = issuer.key.issue(user_id, now, issuer.ttl_seconds);
    let expires_at_ms = (now + issuer.ttl_seconds) * 1000;
    behaviour.emit(Event::new(
        EventMeta::new(SERVICE, Some(user_id)),
        UserLoggedIn {
            session_expires_at_ms: expires_at_ms,
        },
    ));
    tracing::info!("user logged in");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SessionResponse {
            token,
            expires_at_ms,
        }))
}
