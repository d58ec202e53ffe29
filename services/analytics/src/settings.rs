//! The analytics service's settings: where it listens, the backbone, which
//! partitions this instance owns, and the aggregation and snapshot knobs. This
//! service has no SQL database, so it does not use `CoreSettings`.

use crate::recommend::RecommenderSettings;
use shopmesh_shared::service::HttpSettings;
use shopmesh_shared::settings::{BackboneSettings, Env, SettingsError};
use shopmesh_shared::subjects::Partition;
use shopmesh_shared::telemetry::TelemetrySettings;
use std::time::Duration;

/// Default HTTP port of the analytics service.
pub const DEFAULT_PORT: u16 = 8084;

#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub backbone: BackboneSettings,
    /// `SHOPMESH_ANALYTICS_INSTANCE_INDEX` (default 0) of
    /// `SHOPMESH_ANALYTICS_INSTANCE_COUNT` (default 1): this instance owns the
    /// partitions `p` with `p % count == index`.
    pub instance_index: u16,
    pub instance_count: u16,
    /// `SHOPMESH_ANALYTICS_ARBITERS`, default one per core: threads the
    /// partition actors are spread over.
    pub arbiters: usize,
    /// `SHOPMESH_ANALYTICS_MAILBOX`, default 1024: bound of each partition
    /// actor's mailbox, so a slow actor slows its pull loop.
    pub mailbox: usize,
    pub aggregates: AggregateSettings,
    pub snapshots: SnapshotSettings,
    pub recommender: RecommenderSettings,
}

/// How the aggregates are shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AggregateSettings {
    /// `SHOPMESH_ANALYTICS_HISTORY`, default 50 interactions per user.
    pub history: usize,
    /// `SHOPMESH_ANALYTICS_AFFINITY_HALF_LIFE`, default 7d.
    pub affinity_half_life: Duration,
    /// `SHOPMESH_ANALYTICS_COOCCURRENCE_WINDOW`, default 10 distinct
    /// products: up to 2 x 9 co-occurrence updates per touch, and the
    /// recommender's history. Chosen by the neighbour bound's rule: the
    /// smallest of 5, 8, 10, 15 and 20 whose MovieLens-100k results stay
    /// within 2% of 20's (10: offline NDCG@10 -1.6%, prequential HR@10
    /// +2.9%; 8: NDCG -4.3%), since co-occurrence is most of an event's cost.
    pub cooccurrence_window: usize,
    /// `SHOPMESH_ANALYTICS_NEIGHBOURS`, default 200 neighbours kept per
    /// product (up to twice that between prunings). Chosen by a rule: the
    /// smallest bound, in steps of 100, whose MovieLens-100k results are
    /// within 2% of unbounded lists (100: -7% prequential; 200: -1.6%).
    pub neighbours: usize,
}

impl Default for AggregateSettings {
    fn default() -> Self {
        Self {
            history: 50,
            affinity_half_life: Duration::from_secs(7 * 86_400),
            cooccurrence_window: 10,
            neighbours: 200,
        }
    }
}

/// When partition state is snapshotted.
#[derive(Debug, Clone)]
pub struct SnapshotSettings {
    /// `SHOPMESH_ANALYTICS_SNAPSHOT_EVERY`, default 40000 events (per
    /// partition). 10000 when there were 32 partitions: with 8, each holds
    /// four times the state and sees four times the events, so 40000 keeps
    /// the bytes encoded per second and the events replayed after a crash
    /// (at most 8 x 40000) where they were.
    pub every: u64,
    /// `SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL`, default 30s.
    pub interval: Duration,
    /// `SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET`, default `shopmesh-analytics`.
    pub bucket: String,
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let positive = |name: &str, default: usize, max: usize| {
            env.parse_with(
                name,
                default,
                &format!("a whole number from 1 to {max}"),
                |v| v.parse().ok().filter(|n| (1..=max).contains(n)),
            )
        };
        let backbone = BackboneSettings::from_env(env)?;
        let instance_count: u16 = env.parse_with(
            "SHOPMESH_ANALYTICS_INSTANCE_COUNT",
            1,
            "a whole number from 1 to 1024",
            |v| v.parse().ok().filter(|n| (1..=1024).contains(n)),
        )?;
        let instance_index: u16 = env.parse_with(
            "SHOPMESH_ANALYTICS_INSTANCE_INDEX",
            0,
            "a whole number below SHOPMESH_ANALYTICS_INSTANCE_COUNT",
            |v| v.parse().ok().filter(|n| *n < instance_count),
        )?;
        let half_life = env.duration_or(
            "SHOPMESH_ANALYTICS_AFFINITY_HALF_LIFE",
            Duration::from_secs(7 * 86_400),
        )?;
        if half_life.is_zero() {
            return Err(SettingsError {
                variable: "SHOPMESH_ANALYTICS_AFFINITY_HALF_LIFE".into(),
                value: "0".into(),
                expected: "a duration above zero".into(),
            });
        }
        let interval = env.duration_or(
            "SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL",
            Duration::from_secs(30),
        )?;
        if interval.is_zero() {
            return Err(SettingsError {
                variable: "SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL".into(),
                value: "0".into(),
                expected: "a duration above zero".into(),
            });
        }
        let bucket = env.string_or("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET", "shopmesh-analytics");
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SettingsError {
                variable: "SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET".into(),
                value: bucket,
                expected: "a bucket name of letters, digits, '-' and '_'".into(),
            });
        }
        let fraction = |name: &str, default: f64| {
            env.parse_with(name, default, "a number above 0 and at most 1", |v| {
                v.parse::<f64>().ok().filter(|x| *x > 0.0 && *x <= 1.0)
            })
        };
        let recommender = RecommenderSettings {
            history_decay: fraction(
                "SHOPMESH_RECOMMEND_HISTORY_DECAY",
                RecommenderSettings::default().history_decay,
            )?,
            category_share: fraction(
                "SHOPMESH_RECOMMEND_CATEGORY_SHARE",
                RecommenderSettings::default().category_share,
            )?,
        };
        Ok(Self {
            recommender,
            http: HttpSettings {
                host: env.string_or("SHOPMESH_HTTP_HOST", "127.0.0.1"),
                port: env.parse_or("SHOPMESH_HTTP_PORT", DEFAULT_PORT, "a port number 0-65535")?,
                workers: positive("SHOPMESH_HTTP_WORKERS", default_workers, 64)?,
                body_limit: env.bytes_or("SHOPMESH_HTTP_BODY_LIMIT", 64 * 1024)? as usize,
                shutdown_grace: env
                    .duration_or("SHOPMESH_SHUTDOWN_GRACE", Duration::from_secs(10))?,
            },
            backbone,
            instance_index,
            instance_count,
            arbiters: positive("SHOPMESH_ANALYTICS_ARBITERS", default_workers, 256)?,
            mailbox: positive("SHOPMESH_ANALYTICS_MAILBOX", 1024, 1 << 20)?,
            aggregates: AggregateSettings {
                history: positive("SHOPMESH_ANALYTICS_HISTORY", 50, 10_000)?,
                affinity_half_life: half_life,
                cooccurrence_window: positive("SHOPMESH_ANALYTICS_COOCCURRENCE_WINDOW", 10, 1000)?,
                neighbours: positive(
                    "SHOPMESH_ANALYTICS_NEIGHBOURS",
                    AggregateSettings::default().neighbours,
                    10_000,
                )?,
            },
            snapshots: SnapshotSettings {
                every: positive("SHOPMESH_ANALYTICS_SNAPSHOT_EVERY", 40_000, usize::MAX)? as u64,
                interval,
                bucket,
            },
        })
    }

    /// The partitions this instance owns.
    pub fn owned_partitions(&self) -> Vec<Partition> {
        self.backbone
            .streams
            .partitions
            .all()
            .filter(|p| p.index() % self.instance_count == self.instance_index)
            .collect()
    }

    /// Every variable the service reads: [`Settings::from_env`]'s and
    /// telemetry's (read by `main`).
    pub fn variables() -> Vec<&'static str> {
        let mut names = vec![
            "SHOPMESH_HTTP_HOST",
            "SHOPMESH_HTTP_PORT",
            "SHOPMESH_HTTP_WORKERS",
            "SHOPMESH_HTTP_BODY_LIMIT",
            "SHOPMESH_SHUTDOWN_GRACE",
            "SHOPMESH_ANALYTICS_INSTANCE_INDEX",
            "SHOPMESH_ANALYTICS_INSTANCE_COUNT",
            "SHOPMESH_ANALYTICS_ARBITERS",
            "SHOPMESH_ANALYTICS_MAILBOX",
            "SHOPMESH_ANALYTICS_HISTORY",
            "SHOPMESH_ANALYTICS_AFFINITY_HALF_LIFE",
            "SHOPMESH_ANALYTICS_COOCCURRENCE_WINDOW",
            "SHOPMESH_ANALYTICS_NEIGHBOURS",
            "SHOPMESH_ANALYTICS_SNAPSHOT_EVERY",
            "SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL",
            "SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET",
            "SHOPMESH_RECOMMEND_HISTORY_DECAY",
            "SHOPMESH_RECOMMEND_CATEGORY_SHARE",
        ];
        names.extend_from_slice(BackboneSettings::VARIABLES);
        names.extend_from_slice(TelemetrySettings::VARIABLES);
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let settings = Settings::from_env(&Env::default()).unwrap();
        assert_eq!(settings.http.port, DEFAULT_PORT);
        assert_eq!(settings.instance_count, 1);
        assert_eq!(settings.owned_partitions().len(), 8);
        assert_eq!(settings.aggregates, AggregateSettings::default());
        assert_eq!(settings.snapshots.every, 40_000);
        assert_eq!(settings.snapshots.bucket, "shopmesh-analytics");
    }

    #[test]
    fn instances_split_the_partitions() {
        let env = |index: &str| {
            Env::from_pairs([
                ("SHOPMESH_ANALYTICS_INSTANCE_INDEX", index),
                ("SHOPMESH_ANALYTICS_INSTANCE_COUNT", "2"),
                ("SHOPMESH_PARTITIONS", "8"),
            ])
        };
        let first = Settings::from_env(&env("0")).unwrap().owned_partitions();
        let second = Settings::from_env(&env("1")).unwrap().owned_partitions();
        let idx = |ps: Vec<Partition>| ps.iter().map(|p| p.index()).collect::<Vec<_>>();
        assert_eq!(idx(first), vec![0, 2, 4, 6]);
        assert_eq!(idx(second), vec![1, 3, 5, 7]);
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (name, value) in [
            ("SHOPMESH_ANALYTICS_INSTANCE_INDEX", "1"),
            ("SHOPMESH_ANALYTICS_INSTANCE_COUNT", "0"),
            ("SHOPMESH_ANALYTICS_ARBITERS", "0"),
            ("SHOPMESH_ANALYTICS_HISTORY", "lots"),
            ("SHOPMESH_ANALYTICS_AFFINITY_HALF_LIFE", "0s"),
            ("SHOPMESH_ANALYTICS_SNAPSHOT_INTERVAL", "0s"),
            ("SHOPMESH_ANALYTICS_SNAPSHOT_BUCKET", "a.b"),
            ("SHOPMESH_HTTP_PORT", "99999"),
        ] {
            let err = Settings::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
        }
    }

    #[test]
    fn variables_list_everything() {
        let names = Settings::variables();
        assert!(names.contains(&"NATS_URL"));
        assert!(names.contains(&"SHOPMESH_ANALYTICS_SNAPSHOT_EVERY"));
        assert!(names.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT"));
    }
}
