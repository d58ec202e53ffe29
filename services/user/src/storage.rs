//! The `users` table. SQL here runs unchanged on SQLite and Postgres through
//! `sqlx::AnyPool`: `$N` placeholders, TEXT ids, BIGINT Unix milliseconds.
//!
//! E-mail uniqueness is the database's job (a UNIQUE constraint), not a
//! check-then-insert here: only the constraint is race-safe.

use crate::domain::{EmailAddress, UserName};
use crate::password::PasswordHashString;
use anyhow::Context;
use shopmesh_shared::db_span::traced;
use shopmesh_shared::events::UserId;
use sqlx::{AnyConnection, AnyPool, Row};

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
}

/// What login needs: the id and the stored hash.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: UserId,
    pub password_hash: PasswordHashString,
}

/// A user to insert.
#[derive(Debug)]
pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a EmailAddress,
    pub name: &'a UserName,
    pub password_hash: &'a PasswordHashString,
    pub created_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("the e-mail address is taken")]
    DuplicateEmail,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Inserts `user` on `conn` (the caller's transaction). The e-mail's UNIQUE
/// constraint turns a concurrent duplicate into [`InsertError::DuplicateEmail`].
pub async fn insert_user(conn: &mut AnyConnection, user: &NewUser<'_>) -> Result<(), InsertError> {
    let result = sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, created_at_ms)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user.id.to_string())
    .bind(user.email.as_str())
    .bind(user.name.as_str())
    .bind(user.password_hash.as_str())
    .bind(user.created_at_ms)
    .execute(traced(conn))
    .await;
    match result {
        Ok(_) => Ok(()),
        // The id is a fresh UUIDv7, so the only unique key that can clash is
        // the e-mail.
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Err(InsertError::DuplicateEmail)
        }
        Err(error) => Err(error.into()),
    }
}

fn user_id(text: String) -> anyhow::Result<UserId> {
    UserId::parse(&text).with_context(|| format!("stored user id {text:?} is not a UUID"))
}

/// The login data of the account with `email`, if any.
pub async fn credentials_by_email(
    pool: &AnyPool,
    email: &EmailAddress,
) -> anyhow::Result<Option<Credentials>> {
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(traced(pool))
        .await
        .context("reading credentials")?;
    row.map(|row| {
        Ok(Credentials {
            id: user_id(row.try_get("id")?)?,
            password_hash: PasswordHashString::from_stored(row.try_get("password_hash")?),
        })
    })
    .transpose()
}

/// The user with `id`, if stored.
pub async fn user_by_id(pool: &AnyPool, id: UserId) -> anyhow::Result<Option<User>> {
    let row = sqlx::query("SELECT id, email, name FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(traced(pool))
        .await
        .context("reading a user")?;
    row.map(|row| {
        Ok(User {
            id: user_id(row.try_get("id")?)?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
        })
    })
    .transpose()
}
