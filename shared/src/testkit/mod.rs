//! The test harness every crate shares (feature `testkit`): a real
//! nats-server >= 2.10 per test on a free port in its own temp folder (or a
//! JetStream cluster of them on loopback), and a fresh database per test
//! (SQLite always, Postgres when `TEST_POSTGRES_URL` is set).

mod database;
mod nats_cluster;
mod nats_server;
mod otlp;
mod samples;
mod synthetic_shop;

pub use database::{DatabaseKind, TestDatabase, test_databases};
pub use nats_cluster::{NatsCluster, node_name};
pub use nats_server::{NatsServer, check_nats_server, find_nats_server, nats_server_version};
pub use otlp::{OtlpReceiver, ReceivedSpan, ReceivedTrace, hex};
pub use samples::{sample_events, sample_user, viewed_by};
pub use synthetic_shop::SyntheticShop;

use crate::nats::{EventPublisher, connect, jetstream_context, provision_streams};
use crate::settings::{BackboneSettings, Env};
use crate::subjects::Partition;
use async_nats::jetstream;

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

/// A started nats-server with the shopmesh streams provisioned, and a client.
pub struct TestBackbone {
    pub settings: BackboneSettings,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    // Last, so that the client is dropped before the server is killed.
    pub server: NatsServer,
}

impl TestBackbone {
    pub async fn start() -> Self {
        let server = NatsServer::start();
        let settings = backbone_settings(&server);
        Self::provisioned(server, settings).await
    }

    /// As [`Self::start`], on a server that admits only `user` with
    /// `password`; the settings (and so the client) carry both.
    pub async fn start_with_password(user: &str, password: &str) -> Self {
        let server = NatsServer::start_with_password(user, password);
        let mut settings = backbone_settings(&server);
        settings.nats.user = Some(user.to_owned());
        settings.nats.password = Some(crate::settings::Secret::new(password));
        Self::provisioned(server, settings).await
    }

    async fn provisioned(server: NatsServer, settings: BackboneSettings) -> Self {
        let client = connect(&settings.nats, "testkit")
            .await
            .expect("connect to the test nats-server");
        let js = jetstream_context(client.clone(), &settings.publisher);
        provision_streams(&js, &settings.streams)
            .await
            .expect("provision the test streams");
        Self {
            settings,
            client,
            js,
            server,
        }
    }

    pub fn publisher(&self) -> EventPublisher {
        EventPublisher::new(
            self.client.clone(),
            &self.settings.publisher,
            &self.settings.streams,
        )
    }

    /// The stored message at `sequence` of `partition`'s events stream.
    pub async fn stored(
        &self,
        partition: Partition,
        sequence: u64,
    ) -> jetstream::message::StreamMessage {
        self.js
            .get_stream(self.settings.streams.partition_stream(partition))
            .await
            .expect("events stream")
            .get_raw_message(sequence)
            .await
            .expect("stored message")
    }

    /// Every stored event of every partition, oldest first (by the time the
    /// server stored it; one partition's events keep their stream order).
    pub async fn stored_events(&self) -> Vec<jetstream::message::StreamMessage> {
        let mut events = Vec::new();
        for (_, stream) in self.settings.streams.partition_streams() {
            let stream = self.js.get_stream(&stream).await.expect("events stream");
            let state = stream.get_info().await.expect("stream info").state;
            if state.messages == 0 {
                continue;
            }
            for sequence in state.first_sequence..=state.last_sequence {
                if let Ok(message) = stream.get_raw_message(sequence).await {
                    events.push(message);
                }
            }
        }
        events.sort_by_key(|message| message.time);
        events
    }

    /// How many events every partition's stream holds together now.
    pub async fn event_count(&self) -> u64 {
        crate::nats::stored_event_count(&self.js, &self.settings.streams)
            .await
            .expect("every events stream answers")
    }

    /// How many messages a stream holds now.
    pub async fn message_count(&self, stream: &str) -> u64 {
        self.js
            .get_stream(stream)
            .await
            .expect("stream exists")
            .get_info()
            .await
            .expect("stream info")
            .state
            .messages
    }
}

/// Waits until `condition` holds, checking every 10 ms, for at most `within`;
/// panics with `what` when it never does. Tests wait on conditions, not on
/// fixed sleeps.
pub async fn eventually(
    within: std::time::Duration,
    what: &str,
    mut condition: impl AsyncFnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
