//! Typed settings read from environment variables, with defaults.
//!
//! Every binary reads its settings once at start-up through [`Env`]; tests feed
//! an [`Env`] built from pairs instead of touching the process environment. An
//! invalid value stops start-up with a [`SettingsError`] that names the
//! variable, the value and what was expected.

use crate::subjects::{Partition, PartitionCount};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A value that did not parse, named by its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: expected {expected}")]
pub struct SettingsError {
    pub variable: String,
    pub value: String,
    pub expected: String,
}

/// A secret value: readable on purpose through [`Secret::expose`], never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A snapshot of environment variables to read settings from.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment (variables that are not UTF-8 are left out).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// Exactly these variables; for tests.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every variable, e.g. to pass them on to a child process.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The raw value; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// A value parsed with its type's `FromStr`.
    pub fn parse_or<T: FromStr>(
        &self,
        name: &str,
        default: T,
        expected: &str,
    ) -> Result<T, SettingsError> {
        self.parse_with(name, default, expected, |v| v.parse().ok())
    }

    /// A value parsed with `parse`; `None` from it is an error naming `expected`.
    pub fn parse_with<T>(
        &self,
        name: &str,
        default: T,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse(raw).ok_or_else(|| SettingsError {
                variable: name.to_owned(),
                value: raw.to_owned(),
                expected: expected.to_owned(),
            }),
        }
    }

    /// A duration such as `500ms`, `30s`, `5m`, `2h`, `7d` (a bare number is seconds).
    pub fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, SettingsError> {
        self.parse_with(
            name,
            default,
            "a duration like 500ms, 30s, 5m, 2h or 7d",
            parse_duration,
        )
    }

    /// A size such as `512MiB`, `1GiB`, `64KiB` or a number of bytes.
    pub fn bytes_or(&self, name: &str, default: u64) -> Result<u64, SettingsError> {
        self.parse_with(
            name,
            default,
            "a size like 1048576, 64KiB, 512MiB or 1GiB",
            parse_bytes,
        )
    }

    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret::new)
    }
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => number,
        "" | "s" => number.checked_mul(1_000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        "d" => number.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Where and how to reach NATS.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `NATS_URL`, default `nats://127.0.0.1:4222`; a comma-separated list
    /// names a cluster's servers.
    pub url: String,
    /// `NATS_USER` / `NATS_PASSWORD`: user and password, when the server asks for them.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// `NATS_CONNECT_TIMEOUT`, default 5s.
    pub connect_timeout: Duration,
}

/// The events and dead-letter streams.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// `SHOPMESH_STREAM`, default `SHOPMESH_EVENTS`: the prefix of the events
    /// streams, one per partition (see [`StreamSettings::partition_stream`]).
    pub events_stream: String,
    /// `SHOPMESH_DEAD_LETTER_STREAM`, default `SHOPMESH_DEADLETTER`.
    pub dead_letter_stream: String,
    /// `SHOPMESH_STREAM_MAX_AGE`, default 7d.
    pub max_age: Duration,
    /// `SHOPMESH_STREAM_MAX_BYTES`, default 1GiB: for all the events streams
    /// together, split evenly between the partitions.
    pub max_bytes: u64,
    /// `SHOPMESH_STREAM_DUPLICATE_WINDOW`, default 2m: a repeated `Nats-Msg-Id`
    /// inside it is dropped by the server.
    pub duplicate_window: Duration,
    /// `SHOPMESH_STREAM_REPLICAS`, default 1; 3 in a cluster.
    pub replicas: usize,
    /// `SHOPMESH_DEAD_LETTER_MAX_AGE`, default 30d.
    pub dead_letter_max_age: Duration,
    /// `SHOPMESH_PARTITIONS`, default 8 ([`crate::subjects::DEFAULT_PARTITIONS`]).
    pub partitions: PartitionCount,
}

impl StreamSettings {
    /// The stream that holds `partition`'s events: `SHOPMESH_EVENTS_17`.
    ///
    /// Why a stream per partition and not one stream with a filtered
    /// consumer per partition: nats-server 2.10 pays for every filtered
    /// consumer on every stored message, and with 32 of them the server, not
    /// shopmesh, was the bottleneck (docs/benchmarks.md, "stream layouts").
    pub fn partition_stream(&self, partition: Partition) -> String {
        self.stream_of_index(partition.index())
    }

    /// The stream name of partition `index`, also past this count (for
    /// streams an earlier count made).
    pub fn stream_of_index(&self, index: u16) -> String {
        format!("{}_{index}", self.events_stream)
    }

    /// Every partition with the name of its stream, in partition order.
    pub fn partition_streams(&self) -> impl Iterator<Item = (Partition, String)> + '_ {
        self.partitions
            .all()
            .map(|partition| (partition, self.partition_stream(partition)))
    }

    /// The byte limit of one partition's stream: its share of `max_bytes`.
    pub fn partition_max_bytes(&self) -> u64 {
        self.max_bytes / u64::from(self.partitions.get())
    }
}

/// How the publisher bounds and retries.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// `SHOPMESH_PUBLISH_MAX_INFLIGHT`, default 4096 unacknowledged publishes.
    pub max_inflight: usize,
    /// `SHOPMESH_PUBLISH_ATTEMPTS`, default 5 (first try included).
    pub attempts: u32,
    /// `SHOPMESH_PUBLISH_BACKOFF`, default 50ms, doubled per retry.
    pub initial_backoff: Duration,
    /// `SHOPMESH_PUBLISH_MAX_BACKOFF`, default 2s.
    pub max_backoff: Duration,
    /// `SHOPMESH_PUBLISH_ACK_TIMEOUT`, default 5s for one ack.
    pub ack_timeout: Duration,
}

/// How consumers fetch and acknowledge.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// `SHOPMESH_CONSUMER_BATCH`, default 256 messages per pull.
    pub batch: usize,
    /// `SHOPMESH_CONSUMER_ACK_WAIT`, default 30s before the server redelivers.
    pub ack_wait: Duration,
    /// `SHOPMESH_CONSUMER_NAK_DELAY`, default 1s before a transient failure is retried.
    pub nak_delay: Duration,
    /// `SHOPMESH_CONSUMER_MAX_ACK_PENDING`, default 4096.
    pub max_ack_pending: i64,
}

/// Everything the event backbone needs; each service embeds it.
#[derive(Debug, Clone)]
pub struct BackboneSettings {
    pub nats: NatsSettings,
    pub streams: StreamSettings,
    pub publisher: PublisherSettings,
    pub consumer: ConsumerSettings,
}

impl BackboneSettings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let partitions = env.parse_with(
            "SHOPMESH_PARTITIONS",
            PartitionCount::default(),
            "a whole number from 1 to 1024",
            |v| PartitionCount::new(v.parse().ok()?),
        )?;
        let streams = StreamSettings {
            events_stream: env.string_or("SHOPMESH_STREAM", "SHOPMESH_EVENTS"),
            dead_letter_stream: env.string_or("SHOPMESH_DEAD_LETTER_STREAM", "SHOPMESH_DEADLETTER"),
            max_age: env.duration_or("SHOPMESH_STREAM_MAX_AGE", Duration::from_secs(7 * 86_400))?,
            max_bytes: env.bytes_or("SHOPMESH_STREAM_MAX_BYTES", 1 << 30)?,
            duplicate_window: env
                .duration_or("SHOPMESH_STREAM_DUPLICATE_WINDOW", Duration::from_secs(120))?,
            replicas: env.parse_with("SHOPMESH_STREAM_REPLICAS", 1, "1, 3 or 5", |v| {
                v.parse().ok().filter(|n| [1, 3, 5].contains(n))
            })?,
            dead_letter_max_age: env.duration_or(
                "SHOPMESH_DEAD_LETTER_MAX_AGE",
                Duration::from_secs(30 * 86_400),
            )?,
            partitions,
        };
        if streams.duplicate_window > streams.max_age {
            return Err(SettingsError {
                variable: "SHOPMESH_STREAM_DUPLICATE_WINDOW".into(),
                value: format!("{:?}", streams.duplicate_window),
                expected: "a window no longer than SHOPMESH_STREAM_MAX_AGE".into(),
            });
        }
        for (name, value) in [
            ("SHOPMESH_STREAM", &streams.events_stream),
            ("SHOPMESH_DEAD_LETTER_STREAM", &streams.dead_letter_stream),
        ] {
            if !is_valid_name(value) {
                return Err(SettingsError {
                    variable: name.into(),
                    value: value.clone(),
                    expected: "a stream name of letters, digits, '-' and '_'".into(),
                });
            }
        }
        let positive = |name: &str, default: usize| {
            env.parse_with(name, default, "a whole number above 0", |v| {
                v.parse().ok().filter(|n| *n > 0)
            })
        };
        Ok(Self {
            nats: NatsSettings {
                url: env.string_or("NATS_URL", "nats://127.0.0.1:4222"),
                user: env.get("NATS_USER").map(str::to_owned),
                password: env.secret("NATS_PASSWORD"),
                connect_timeout: env.duration_or("NATS_CONNECT_TIMEOUT", Duration::from_secs(5))?,
            },
            streams,
            publisher: PublisherSettings {
                max_inflight: positive("SHOPMESH_PUBLISH_MAX_INFLIGHT", 4096)?,
                attempts: positive("SHOPMESH_PUBLISH_ATTEMPTS", 5)? as u32,
                initial_backoff: env
                    .duration_or("SHOPMESH_PUBLISH_BACKOFF", Duration::from_millis(50))?,
                max_backoff: env
                    .duration_or("SHOPMESH_PUBLISH_MAX_BACKOFF", Duration::from_secs(2))?,
                ack_timeout: env
                    .duration_or("SHOPMESH_PUBLISH_ACK_TIMEOUT", Duration::from_secs(5))?,
            },
            consumer: ConsumerSettings {
                batch: positive("SHOPMESH_CONSUMER_BATCH", 256)?,
                ack_wait: env.duration_or("SHOPMESH_CONSUMER_ACK_WAIT", Duration::from_secs(30))?,
                nak_delay: env
                    .duration_or("SHOPMESH_CONSUMER_NAK_DELAY", Duration::from_secs(1))?,
                max_ack_pending: positive("SHOPMESH_CONSUMER_MAX_ACK_PENDING", 4096)? as i64,
            },
        })
    }

    /// Every variable [`BackboneSettings::from_env`] reads; the deployment
    /// files are checked against this list.
    pub const VARIABLES: &'static [&'static str] = &[
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CONNECT_TIMEOUT",
        "SHOPMESH_PARTITIONS",
        "SHOPMESH_STREAM",
        "SHOPMESH_DEAD_LETTER_STREAM",
        "SHOPMESH_STREAM_MAX_AGE",
        "SHOPMESH_STREAM_MAX_BYTES",
        "SHOPMESH_STREAM_DUPLICATE_WINDOW",
        "SHOPMESH_STREAM_REPLICAS",
        "SHOPMESH_DEAD_LETTER_MAX_AGE",
        "SHOPMESH_PUBLISH_MAX_INFLIGHT",
        "SHOPMESH_PUBLISH_ATTEMPTS",
        "SHOPMESH_PUBLISH_BACKOFF",
        "SHOPMESH_PUBLISH_MAX_BACKOFF",
        "SHOPMESH_PUBLISH_ACK_TIMEOUT",
        "SHOPMESH_CONSUMER_BATCH",
        "SHOPMESH_CONSUMER_ACK_WAIT",
        "SHOPMESH_CONSUMER_NAK_DELAY",
        "SHOPMESH_CONSUMER_MAX_ACK_PENDING",
    ];
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = BackboneSettings::from_env(&Env::default()).unwrap();
        assert_eq!(settings.streams.partitions.get(), 8);
        assert_eq!(settings.streams.duplicate_window, Duration::from_secs(120));
        assert_eq!(settings.streams.max_bytes, 1 << 30);
        assert_eq!(settings.nats.url, "nats://127.0.0.1:4222");
        assert!(settings.nats.password.is_none());
    }

    #[test]
    fn values_are_parsed_with_units() {
        let env = Env::from_pairs([
            ("SHOPMESH_STREAM_MAX_AGE", "2h"),
            ("SHOPMESH_STREAM_MAX_BYTES", "512MiB"),
            ("SHOPMESH_PUBLISH_BACKOFF", "10ms"),
            ("SHOPMESH_PARTITIONS", "8"),
            ("SHOPMESH_STREAM_REPLICAS", "3"),
        ]);
        let settings = BackboneSettings::from_env(&env).unwrap();
        assert_eq!(settings.streams.max_age, Duration::from_secs(7200));
        assert_eq!(settings.streams.max_bytes, 512 << 20);
        assert_eq!(
            settings.publisher.initial_backoff,
            Duration::from_millis(10)
        );
        assert_eq!(settings.streams.partitions.get(), 8);
        assert_eq!(settings.streams.replicas, 3);
        // A stream per partition, sharing the byte limit.
        let names: Vec<String> = settings
            .streams
            .partition_streams()
            .map(|(_, name)| name)
            .collect();
        assert_eq!(names.len(), 8);
        assert_eq!(names[0], "SHOPMESH_EVENTS_0");
        assert_eq!(names[7], "SHOPMESH_EVENTS_7");
        assert_eq!(settings.streams.partition_max_bytes(), 64 << 20);
    }

    #[test]
    fn an_invalid_value_names_its_variable() {
        for (name, value) in [
            ("SHOPMESH_PARTITIONS", "0"),
            ("SHOPMESH_PARTITIONS", "many"),
            ("SHOPMESH_STREAM_MAX_AGE", "7 weeks"),
            ("SHOPMESH_STREAM_MAX_BYTES", "1TB"),
            ("SHOPMESH_STREAM_REPLICAS", "2"),
            ("SHOPMESH_CONSUMER_BATCH", "0"),
            ("SHOPMESH_STREAM", "has space"),
        ] {
            let err = BackboneSettings::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.variable, name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn duplicate_window_cannot_outlive_the_stream() {
        let env = Env::from_pairs([
            ("SHOPMESH_STREAM_MAX_AGE", "1m"),
            ("SHOPMESH_STREAM_DUPLICATE_WINDOW", "2m"),
        ]);
        let err = BackboneSettings::from_env(&env).unwrap_err();
        assert_eq!(err.variable, "SHOPMESH_STREAM_DUPLICATE_WINDOW");
    }

    #[test]
    fn secrets_do_not_print() {
        let env = Env::from_pairs([("NATS_PASSWORD", "hunter2")]);
        let settings = BackboneSettings::from_env(&env).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert_eq!(settings.nats.password.unwrap().expose(), "hunter2");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_bytes("64KiB"), Some(65_536));
        assert_eq!(parse_bytes("99999999999999999999GiB"), None);
    }
}
