//! `POST /users` (registration) and `GET /users/me` (the caller's profile).

use crate::SERVICE;
use crate::domain::{EmailAddress, Password, UserName};
use crate::error::UserError;
use crate::password::PasswordHasher;
use crate::storage::{self, InsertError, NewUser, User};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use shopmesh_shared::db_writes::WriteGate;
use shopmesh_shared::events::{Event, EventMeta, UserId, UserRegistered};
use shopmesh_shared::http::{AuthenticatedUser, JsonBody};
use shopmesh_shared::nats::EventPublisher;
use shopmesh_shared::outbox;
use sqlx::AnyPool;
use tokio::sync::Notify;

/// The body of `POST /users`. No `Debug`: it holds a plain password.
#[derive(Deserialize)]
pub struct RegisterRequest {
    email: String,
    name: String,
    password: String,
}

/// A registration whose every field passed validation.
pub struct Registration {
    pub email: EmailAddress,
    pub name: UserName,
    pub password: Password,
}

impl RegisterRequest {
    /// Every check a registration passes before anything is hashed or
    /// written; public so that the fuzz harness runs exactly these.
    pub fn validate(self) -> Result<Registration, UserError> {
        Ok(Registration {
            email: EmailAddress::parse(&self.email)?,
            name: UserName::parse(&self.name)?,
            password: Password::parse(self.password)?,
        })
    }
}

/// A user as every endpoint shows it; the password hash never leaves storage.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserResponse {
    pub id: UserId,
    pub email: String,
    pub name: String,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
        }
    }
}

/// Creates the account and, in the same transaction, its `user.registered`
/// event in the outbox; nothing is written when a field is invalid or the
/// e-mail is taken.
#[tracing::instrument(
    name = "register user",
    skip_all,
    fields(user.id = tracing::field::Empty)
)]
pub async fn register(
    body: JsonBody<RegisterRequest>,
    pool: web::Data<AnyPool>,
    writes: web::Data<WriteGate>,
    publisher: web::Data<EventPublisher>,
    outbox_wake: web::Data<Notify>,
    hasher: web::Data<PasswordHasher>,
) -> Result<HttpResponse, UserError> {
    let Registration {
        email,
        name,
        password,
    } = body.into_inner().validate()?;
    // Before the transaction: hashing takes tens of milliseconds, and a
    // transaction held open that long would serialise SQLite writers behind it.
    let password_hash = hasher.hash(password).await?;

    let id = UserId::new_v7();
    tracing::Span::current().record("user.id", tracing::field::display(id));
    let event = Event::new(
        EventMeta::new(SERVICE, Some(id)),
        UserRegistered {
            name: name.as_str().to_owned(),
        },
    );
    let outbound = publisher
        .prepare(&event)
        .context("encoding user.registered")?;

    let mut tx = writes
        .begin(&pool)
        .await
        .context("beginning a transaction")?;
    let new_user = NewUser {
        id,
        email: &email,
        name: &name,
        password_hash: &password_hash,
        created_at_ms: event.meta.occurred_at.as_millis(),
    };
    match storage::insert_user(&mut tx, &new_user).await {
        Ok(()) => {}
        Err(InsertError::DuplicateEmail) => return Err(UserError::DuplicateEmail),
        Err(InsertError::Database(error)) => {
            return Err(anyhow::Error::new(error).context("inserting a user").into());
        }
    }
    outbox::enqueue(&mut tx, &outbound)
        .await
        .context("enqueueing user.registered")?;
    tx.commit().await.context("committing a registration")?;
    outbox_wake.notify_one();

    tracing::info!("user registered");
    Ok(HttpResponse::Created().json(UserResponse {
        id,
        email: email.as_str().to_owned(),
        name: name.into_string(),
    }))
}

/// The profile of the user the bearer token names.
#[tracing::instrument(name = "current user", skip_all, fields(user.id = %user.0))]
pub async fn me(
    user: AuthenticatedUser,
    pool: web::Data<AnyPool>,
) -> Result<HttpResponse, UserError> {
    let found = storage::user_by_id(&pool, user.0)
        .await?
        .ok_or(UserError::UserNotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserResponse::from(found)))
}
