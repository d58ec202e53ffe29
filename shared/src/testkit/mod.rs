//! The test harness every crate shares (feature `testkit`): a real
//! nats-server >= 2.10 per test on a free port in its own temp folder, and a
//! fresh database per test (SQLite always, Postgres when `TEST_POSTGRES_URL`
//! is set).

mod database;
mod nats_server;

pub use database::{DatabaseKind, TestDatabase, test_databases};
pub use nats_server::{NatsServer, find_nats_server, nats_server_version};

use crate::settings::{BackboneSettings, Env};

/// Backbone settings for tests against `server`: default streams, short
/// timeouts so that a failing test fails fast.
pub fn backbone_settings(server: &NatsServer) -> BackboneSettings {
    let env = Env::from_pairs([
        ("NATS_URL", server.url()),
        ("SHOPMESH_PUBLISH_BACKOFF", "20ms".to_owned()),
        ("SHOPMESH_PUBLISH_ACK_TIMEOUT", "2s".to_owned()),
        ("SHOPMESH_CONSUMER_NAK_DELAY", "100ms".to_owned()),
        ("SHOPMESH_CONSUMER_ACK_WAIT", "5s".to_owned()),
    ]);
    BackboneSettings::from_env(&env).expect("test settings are valid")
}
