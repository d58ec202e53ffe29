//! Password hashing: argon2id with a random salt per password, stored as a
//! PHC string (which carries its own parameters, so raising the cost later
//! still verifies old hashes).
//!
//! Hashing is deliberately slow and memory-hungry, so it runs on the blocking
//! pool, never on an async worker, and at most `concurrency` at a time. Login
//! for an unknown e-mail verifies against a dummy hash made with the same
//! cost at start-up, so that the response time does not reveal whether an
//! account exists.

use crate::domain::Password;
use crate::settings::PasswordSettings;
use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use shopmesh_shared::settings::Secret;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A PHC string, `$argon2id$v=19$m=...`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashString(String);

impl PasswordHashString {
    /// A hash read back from storage.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is not the password, but it is still material for an
        // offline guessing attack: keep it out of logs.
        f.write_str("PasswordHashString([redacted])")
    }
}

/// Hashes and verifies passwords off the async workers.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    dummy: Arc<PasswordHashString>,
    permits: Arc<Semaphore>,
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(params: Params, password: &[u8]) -> anyhow::Result<PasswordHashString> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2(params)
        .hash_password(password, &salt)
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
    Ok(PasswordHashString(hash.to_string()))
}

fn verify_blocking(password: &[u8], stored: &PasswordHashString) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(stored.as_str())
        .map_err(|e| anyhow::anyhow!("stored password hash is not a PHC string: {e}"))?;
    // The PHC string's own parameters apply, whatever the current settings.
    match Argon2::default().verify_password(password, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("argon2 verification failed: {e}")),
    }
}

impl PasswordHasher {
    /// Checks the parameters and makes the dummy hash (one hash's worth of
    /// work, on the blocking pool).
    pub async fn new(settings: PasswordSettings) -> anyhow::Result<Self> {
        let params = Params::new(settings.memory_kib, settings.iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let dummy_params = params.clone();
        let dummy = tokio::task::spawn_blocking(move || {
            let mut random = [0u8; 32];
            argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
            hash_blocking(dummy_params, &random)
        })
        .await
        .context("dummy password hash task")??;
        Ok(Self {
            params,
            dummy: Arc::new(dummy),
            permits: Arc::new(Semaphore::new(settings.concurrency)),
        })
    }

    /// A fresh salted hash of `password`.
    pub async fn hash(&self, password: Password) -> anyhow::Result<PasswordHashString> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_blocking(params, password.expose().as_bytes()))
            .await
            .context("password hash task")?
    }

    /// Whether `attempt` matches `stored`. With no stored hash (unknown
    /// account) it does the same work against the dummy and answers false.
    pub async fn verify(
        &self,
        attempt: Secret,
        stored: Option<PasswordHashString>,
    ) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let known = stored.is_some();
        let target = stored.unwrap_or_else(|| (*self.dummy).clone());
        let matches = tokio::task::spawn_blocking(move || {
            verify_blocking(attempt.expose().as_bytes(), &target)
        })
        .await
        .context("password verify task")??;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordSettings {
        PasswordSettings {
            memory_kib: 64,
            iterations: 1,
            concurrency: 2,
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(cheap()).await.unwrap();
        let hash = hasher
            .hash(Password::parse("correct horse".into()).unwrap())
            .await
            .unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(!hash.as_str().contains("correct horse"));
        assert!(
            hasher
                .verify(Secret::new("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(Secret::new("correct horsf"), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_gets_a_new_salt_each_time() {
        let hasher = PasswordHasher::new(cheap()).await.unwrap();
        let password = Password::parse("correct horse".into()).unwrap();
        let a = hasher.hash(password.clone()).await.unwrap();
        let b = hasher.hash(password).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let hasher = PasswordHasher::new(cheap()).await.unwrap();
        assert!(!hasher.verify(Secret::new("anything"), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        let hasher = PasswordHasher::new(cheap()).await.unwrap();
        let corrupt = PasswordHashString::from_stored("not a hash".into());
        assert!(
            hasher
                .verify(Secret::new("anything"), Some(corrupt))
                .await
                .is_err()
        );
    }
}
