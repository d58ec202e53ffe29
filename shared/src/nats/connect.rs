//! Connecting to NATS, and refusing a server too old for us.

use super::BackboneError;
use crate::settings::{NatsSettings, PublisherSettings};
use async_nats::jetstream;
use std::fmt;

/// The oldest nats-server shopmesh runs on. 2.10 brings consumers with several
/// filter subjects and the account info async-nats needs for key-value buckets
/// (2.9 accepts `filter_subjects` and silently ignores it); 2.10.20-2.10.22
/// could lose a whole stream on a process crash, fixed in 2.10.23.
pub const MIN_SERVER_VERSION: &str = "2.10.23";

/// A `major.minor.patch` server version; a suffix such as `-RC.1` is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(pub u32, pub u32, pub u32);

impl ServerVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let core = text.split(['-', '+', ' ']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>());
        let version = Self(
            parts.next()?.ok()?,
            parts.next()?.ok()?,
            parts.next().unwrap_or(Ok(0)).ok()?,
        );
        Some(version)
    }

    pub fn minimum() -> Self {
        Self::parse(MIN_SERVER_VERSION).expect("MIN_SERVER_VERSION parses")
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Connects with the settings' credentials, names the connection after
/// `client_name`, and refuses a server older than [`MIN_SERVER_VERSION`].
pub async fn connect(
    settings: &NatsSettings,
    client_name: &str,
) -> Result<async_nats::Client, BackboneError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(client_name)
        .connection_timeout(settings.connect_timeout)
        // Keep trying after the first connection: a restarted broker must not
        // end a service, and the outbox and retries cover the gap.
        .max_reconnects(None);
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        options = options.user_and_password(user.clone(), password.expose().to_owned());
    }
    let client = options
        .connect(settings.url.as_str())
        .await
        .map_err(|source| BackboneError::Connect {
            url: settings.url.clone(),
            source,
        })?;
    let found = client.server_info().version;
    match ServerVersion::parse(&found) {
        Some(version) if version >= ServerVersion::minimum() => Ok(client),
        _ => Err(BackboneError::ServerTooOld {
            url: settings.url.clone(),
            found,
            needed: MIN_SERVER_VERSION,
        }),
    }
}

/// A JetStream context whose publishes wait (rather than fail) when
/// `max_inflight` acks are outstanding: that is the publisher's backpressure.
pub fn jetstream_context(
    client: async_nats::Client,
    settings: &PublisherSettings,
) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .max_ack_inflight(settings.max_inflight)
        .backpressure_on_inflight(true)
        .timeout(settings.ack_timeout)
        .build(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let min = ServerVersion::minimum();
        assert!(ServerVersion::parse("2.9.10").unwrap() < min);
        assert!(ServerVersion::parse("2.10.22").unwrap() < min);
        assert!(ServerVersion::parse("2.10.23").unwrap() >= min);
        assert!(ServerVersion::parse("v2.10.27").unwrap() >= min);
        assert!(ServerVersion::parse("2.11.0-RC.1").unwrap() >= min);
        assert!(ServerVersion::parse("3.0").unwrap() >= min);
        assert_eq!(ServerVersion::parse("garbage"), None);
        assert_eq!(ServerVersion::parse(""), None);
    }
}
