//! Signed, expiring session tokens, verified locally by every service.
//!
//! The user service issues a token at login; every service checks it with the
//! shared key from `SHOPMESH_AUTH_KEY`, without a call to the user service.
//! Format: `v1.<claims>.<mac>`, where `claims` is base64url (no padding) of a
//! small JSON object and `mac` is base64url of HMAC-SHA256 over `v1.<claims>`
//! with the key. Product writes use a separate admin token
//! (`SHOPMESH_ADMIN_TOKEN`), compared in constant time.

use crate::events::UserId;
use crate::settings::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused. The text never contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// The key tokens are signed and verified with.
#[derive(Clone)]
pub struct TokenKey(Secret);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

/// The shortest key accepted: 32 bytes, the HMAC-SHA256 block strength.
pub const MIN_KEY_BYTES: usize = 32;

impl TokenKey {
    /// `None` when the key is shorter than [`MIN_KEY_BYTES`].
    pub fn new(secret: Secret) -> Option<Self> {
        (secret.expose().len() >= MIN_KEY_BYTES).then_some(Self(secret))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.0.expose().as_bytes()).expect("HMAC takes any key length")
    }

    /// A token for `user`, valid from `now` (Unix seconds) for `ttl_seconds`.
    pub fn issue(&self, user: UserId, now: i64, ttl_seconds: i64) -> String {
        let claims = Claims {
            sub: user,
            iat: now,
            exp: now + ttl_seconds,
        };
        let json = serde_json::to_vec(&claims).expect("claims serialize");
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The claims of `token` if its signature is valid and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (version, claims) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        if version != VERSION || token.len() > 1024 {
            return Err(TokenError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        // Only signed bytes are parsed.
        let json = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Compares two secrets without leaking, through timing, where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Unix seconds now.
pub fn now_seconds() -> i64 {
    crate::events::Timestamp::now().as_millis() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> TokenKey {
        TokenKey::new(Secret::new(text)).unwrap()
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_verifies_until_it_expires() {
        let user = UserId::new_v7();
        let token = key(KEY).issue(user, 1_000, 60);
        let claims = key(KEY).verify(&token, 1_059).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(key(KEY).verify(&token, 1_060), Err(TokenError::Expired));
    }

    #[test]
    fn another_key_or_a_changed_claim_fails_the_signature() {
        let token = key(KEY).issue(UserId::new_v7(), 1_000, 60);
        let other = key("ffffffffffffffffffffffffffffffff");
        assert_eq!(other.verify(&token, 1_001), Err(TokenError::BadSignature));

        // Same signature, claims of another user with a later expiry.
        let (_, tag) = token.rsplit_once('.').unwrap();
        let forged_claims = Claims {
            sub: UserId::new_v7(),
            iat: 1_000,
            exp: 9_999_999_999,
        };
        let forged = format!(
            "v1.{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap())
        );
        assert_eq!(
            key(KEY).verify(&forged, 1_001),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for token in [
            "",
            "abc",
            "v1.abc",
            "v2.e30.AAAA",
            "v1.!!!.???",
            "v1..",
            "...",
        ] {
            assert!(key(KEY).verify(token, 0).is_err(), "{token:?}");
        }
        assert_eq!(key(KEY).verify("v1.e30", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(TokenKey::new(Secret::new("short")).is_none());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"admin-token", b"admin-token"));
        assert!(!constant_time_eq(b"admin-token", b"admin-tokem"));
        assert!(!constant_time_eq(b"admin", b"admin-token"));
    }
}
