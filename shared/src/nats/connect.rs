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

/// The servers of a `NATS_URL`: one URL, or a comma-separated list of a
/// cluster's servers (the client starts with whichever answers, so a service
/// can start while one of them is down).
pub fn server_urls(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// Credentials written into a server URL (`nats://user:password@host`).
#[derive(Debug, PartialEq, Eq)]
enum UrlCredentials {
    UserAndPassword(String, String),
    /// `nats://token@host`.
    Token(String),
}

/// `url` without `user:password@`, and what was there (percent-decoded).
///
/// async-nats 0.51 logs every connection attempt at debug level with the
/// parsed URL, password included, and does not authenticate with URL
/// credentials at all; our connection errors quote the URL too. So the
/// credentials leave the URL here, authenticate through the connect options,
/// and the URL that goes on is safe to log.
fn split_credentials(url: &str) -> (String, Option<UrlCredentials>) {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let userinfo = &rest[..at];
    let credentials = match userinfo.split_once(':') {
        Some((user, password)) => {
            UrlCredentials::UserAndPassword(percent_decoded(user), percent_decoded(password))
        }
        None => UrlCredentials::Token(percent_decoded(userinfo)),
    };
    let bare = format!("{}{}", &url[..authority_start], &rest[at + 1..]);
    (bare, Some(credentials))
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    let mut servers = Vec::new();
    let mut url_credentials = None;
    for server in server_urls(&settings.url) {
        let (bare, credentials) = split_credentials(server);
        servers.push(bare);
        url_credentials = url_credentials.or(credentials);
    }
    // The URL (no longer) carries the password: this one is safe to show.
    let shown_url = servers.join(",");
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        options = options.user_and_password(user.clone(), password.expose().to_owned());
    } else {
        match url_credentials {
            Some(UrlCredentials::UserAndPassword(user, password)) => {
                options = options.user_and_password(user, password);
            }
            Some(UrlCredentials::Token(token)) => options = options.token(token),
            None => {}
        }
    }
    let client = options
        .connect(servers)
        .await
        .map_err(|source| BackboneError::Connect {
            url: shown_url.clone(),
            source,
        })?;
    let found = client.server_info().version;
    match ServerVersion::parse(&found) {
        Some(version) if version >= ServerVersion::minimum() => Ok(client),
        _ => Err(BackboneError::ServerTooOld {
            url: shown_url,
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
    fn credentials_leave_the_url() {
        assert_eq!(
            split_credentials("nats://shop:s3cr%40t@nats:4222"),
            (
                "nats://nats:4222".to_owned(),
                Some(UrlCredentials::UserAndPassword(
                    "shop".into(),
                    "s3cr@t".into()
                ))
            )
        );
        assert_eq!(
            split_credentials("tls://t0ken@nats:4222/x@y"),
            (
                "tls://nats:4222/x@y".to_owned(),
                Some(UrlCredentials::Token("t0ken".into()))
            )
        );
        assert_eq!(
            split_credentials("nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".to_owned(), None)
        );
        assert_eq!(
            split_credentials("u:p@localhost:4222"),
            (
                "localhost:4222".to_owned(),
                Some(UrlCredentials::UserAndPassword("u".into(), "p".into()))
            )
        );
    }

    #[test]
    fn a_url_list_names_every_server() {
        assert_eq!(
            server_urls("nats://a:4222, nats://b:4222,,nats://c:4222"),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        assert_eq!(
            server_urls("nats://127.0.0.1:4222"),
            ["nats://127.0.0.1:4222"]
        );
    }

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
