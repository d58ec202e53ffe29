//! The event backbone against a real nats-server (>= 2.10, started per test):
//! provisioning, publishing, de-duplication, consuming, dead letters, retries.

use async_nats::HeaderMap;
use shopmesh_shared::events::{Event, EventId, UserId};
use shopmesh_shared::nats::headers::{self as h};
use shopmesh_shared::nats::{
    BackboneError, ConsumerRunner, Delivery, EventHandler, HandlerError, PARTITIONS_METADATA,
    PublishError, connect, events_stream_config, provision_streams,
};
use shopmesh_shared::subjects::{PartitionCount, event_subject, partition_for};
use shopmesh_shared::testkit::{TestBackbone, eventually, viewed_by};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// Records every delivery; fails the first delivery of chosen events.
struct Recorder {
    deliveries: mpsc::UnboundedSender<Delivery>,
    fail_once: Mutex<HashSet<EventId>>,
}

impl EventHandler for Recorder {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let first_failure = self
            .fail_once
            .lock()
            .unwrap()
            .remove(&delivery.event.meta.event_id);
        if first_failure {
            return Err(HandlerError::Transient(anyhow::anyhow!("dependency down")));
        }
        let _ = self.deliveries.send(delivery);
        Ok(())
    }
}

struct Running {
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    stats: Arc<shopmesh_shared::nats::ConsumerStats>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), BackboneError>>,
}

fn start_consumer(backbone: &TestBackbone, fail_once: HashSet<EventId>) -> Running {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = Arc::new(Recorder {
        deliveries: tx,
        fail_once: Mutex::new(fail_once),
    });
    let runner = ConsumerRunner::new(
        backbone.js.clone(),
        "test",
        backbone.settings.streams.partitions.all().collect(),
        &backbone.settings.streams,
        &backbone.settings.consumer,
        handler,
    );
    let stats = runner.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    Running {
        deliveries: rx,
        stats,
        shutdown,
        task,
    }
}

async fn next(running: &mut Running) -> Delivery {
    tokio::time::timeout(WAIT, running.deliveries.recv())
        .await
        .expect("a delivery in time")
        .expect("consumer still running")
}

#[tokio::test]
async fn provisioning_is_idempotent_and_follows_settings() {
    let mut backbone = TestBackbone::start().await;
    // Once more with the same settings: nothing changes, nothing fails.
    let again = provision_streams(&backbone.js, &backbone.settings.streams)
        .await
        .unwrap();
    // One stream per partition, each holding that partition's subjects.
    assert_eq!(again.events.len(), 8);
    for (partition, info) in backbone
        .settings
        .streams
        .partitions
        .all()
        .zip(&again.events)
    {
        assert_eq!(info.config.name, format!("SHOPMESH_EVENTS_{partition}"));
        assert_eq!(
            info.config.subjects,
            vec![format!("shopmesh.events.*.*.{partition}")]
        );
    }
    let config = &again.events[5].config;
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert_eq!(config.max_age, Duration::from_secs(7 * 86_400));
    // The 1 GiB default is for all partitions together.
    assert_eq!(config.max_bytes, (1 << 30) / 8);
    assert_eq!(config.num_replicas, 1);
    assert_eq!(
        again.dead_letter.config.subjects,
        vec!["shopmesh.deadletter.>".to_string()]
    );

    // A changed setting updates the existing stream in place.
    backbone.settings.streams.max_age = Duration::from_secs(3600);
    backbone.settings.streams.duplicate_window = Duration::from_secs(30);
    let updated = provision_streams(&backbone.js, &backbone.settings.streams)
        .await
        .unwrap();
    for info in &updated.events {
        assert_eq!(info.config.max_age, Duration::from_secs(3600));
        assert_eq!(info.config.duplicate_window, Duration::from_secs(30));
    }
}

#[tokio::test]
async fn a_published_event_carries_its_id_type_version_and_traceparent() {
    let backbone = TestBackbone::start().await;
    let user = UserId::new_v7();
    let event = viewed_by(user);
    let published = backbone.publisher().publish(&event).await.unwrap();
    assert!(!published.duplicate);

    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    let stored = backbone.stored(partition, published.stream_sequence).await;
    assert_eq!(
        stored.subject.as_str(),
        event_subject(event.event_type(), partition)
    );
    let header = |name: &str| stored.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header(h::MESSAGE_ID), Some(event.meta.event_id.to_string()));
    assert_eq!(header(h::EVENT_TYPE).as_deref(), Some("product.viewed"));
    assert_eq!(header(h::SCHEMA_VERSION).as_deref(), Some("1"));
    assert_eq!(header(h::ENCODING).as_deref(), Some("bincode2"));
    let traceparent = header(h::TRACEPARENT).expect("traceparent header");
    let parts: Vec<_> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16));
    // And any NATS client can decode it with the shared codec.
    let decoded = h::decode_message(Some(&stored.headers), &stored.payload).unwrap();
    assert_eq!(decoded, event);
}

#[tokio::test]
async fn a_duplicate_publish_lands_once() {
    let backbone = TestBackbone::start().await;
    let publisher = backbone.publisher();
    let event = viewed_by(UserId::new_v7());
    let first = publisher.publish(&event).await.unwrap();
    let second = publisher.publish(&event).await.unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate, "the server must report the repeat");
    assert_eq!(second.stream_sequence, first.stream_sequence);
    assert_eq!(backbone.event_count().await, 1);
    assert_eq!(
        publisher
            .stats()
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_users_events_arrive_in_order_and_are_acked() {
    let backbone = TestBackbone::start().await;
    let publisher = backbone.publisher();
    let user = UserId::new_v7();
    let events: Vec<Event> = (0..200).map(|_| viewed_by(user)).collect();
    // Pipelined: send all, then confirm all.
    let mut pending = Vec::new();
    for event in &events {
        pending.push(
            publisher
                .send(publisher.prepare(event).unwrap())
                .await
                .unwrap(),
        );
    }
    for p in pending {
        p.confirm().await.unwrap();
    }

    let mut running = start_consumer(&backbone, HashSet::new());
    let mut last_sequence = 0;
    for expected in &events {
        let delivery = next(&mut running).await;
        assert_eq!(&delivery.event, expected);
        assert!(delivery.stream_sequence > last_sequence);
        last_sequence = delivery.stream_sequence;
        assert_eq!(delivery.delivered, 1);
    }
    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
    assert_eq!(running.stats.snapshot().handled, 200);

    // Every message was acked: nothing pending, nothing waiting.
    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    let name = shopmesh_shared::nats::consumer_name("test", partition);
    let info = backbone
        .js
        .get_stream(backbone.settings.streams.partition_stream(partition))
        .await
        .unwrap()
        .consumer_info(&name)
        .await
        .unwrap();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, last_sequence);
}

#[tokio::test]
async fn garbage_goes_to_the_dead_letter_stream_and_the_partition_keeps_going() {
    let backbone = TestBackbone::start().await;
    let user = UserId::new_v7();
    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    let subject = event_subject(shopmesh_shared::events::EventType::ProductViewed, partition);

    // Three kinds of bad message: no headers at all, a body that is not
    // bincode of the named type, and an encoding this build does not know.
    backbone
        .js
        .publish(subject.clone(), "not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(h::EVENT_TYPE, "product.viewed");
    headers.insert(h::SCHEMA_VERSION, "1");
    headers.insert(h::ENCODING, "bincode2");
    backbone
        .js
        .publish_with_headers(subject.clone(), headers.clone(), vec![0xff; 40].into())
        .await
        .unwrap()
        .await
        .unwrap();
    headers.insert(h::ENCODING, "protobuf");
    backbone
        .js
        .publish_with_headers(subject.clone(), headers, vec![1, 2, 3].into())
        .await
        .unwrap()
        .await
        .unwrap();
    let good = viewed_by(user);
    backbone.publisher().publish(&good).await.unwrap();

    let mut running = start_consumer(&backbone, HashSet::new());
    let delivery = next(&mut running).await;
    assert_eq!(
        delivery.event, good,
        "the valid event after the garbage arrives"
    );
    let dead_letter_stream = backbone.settings.streams.dead_letter_stream.clone();
    eventually(WAIT, "three dead letters stored", async || {
        backbone.message_count(&dead_letter_stream).await == 3
    })
    .await;
    assert_eq!(running.stats.snapshot().dead_lettered, 3);

    let stream = backbone.js.get_stream(&dead_letter_stream).await.unwrap();
    let mut reasons = Vec::new();
    for sequence in 1..=3 {
        let dead = stream.get_raw_message(sequence).await.unwrap();
        assert_eq!(dead.subject.as_str(), "shopmesh.deadletter.test");
        assert_eq!(
            dead.headers.get(h::DEAD_LETTER_SUBJECT).unwrap().as_str(),
            subject
        );
        assert!(dead.headers.get(h::DEAD_LETTER_ERROR).is_some());
        reasons.push(
            dead.headers
                .get(h::DEAD_LETTER_REASON)
                .unwrap()
                .as_str()
                .to_owned(),
        );
    }
    assert_eq!(
        reasons,
        ["missing_header", "malformed_body", "unknown_encoding"]
    );
    assert_eq!(dead_payload(&stream, 1).await, b"not an event");

    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}

async fn dead_payload(stream: &async_nats::jetstream::stream::Stream, sequence: u64) -> Vec<u8> {
    stream
        .get_raw_message(sequence)
        .await
        .unwrap()
        .payload
        .to_vec()
}

#[tokio::test]
async fn events_from_a_newer_producer_are_skipped_and_counted() {
    let backbone = TestBackbone::start().await;
    let user = UserId::new_v7();
    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    let mut headers = HeaderMap::new();
    headers.insert(h::EVENT_TYPE, "product.wishlisted");
    headers.insert(h::SCHEMA_VERSION, "1");
    headers.insert(h::ENCODING, "bincode2");
    let subject = format!("shopmesh.events.product.wishlisted.{partition}");
    backbone
        .js
        .publish_with_headers(subject, headers.clone(), vec![1, 2, 3].into())
        .await
        .unwrap()
        .await
        .unwrap();
    // A known type at a version from the future.
    headers.insert(h::EVENT_TYPE, "product.viewed");
    headers.insert(h::SCHEMA_VERSION, "9");
    let subject = event_subject(shopmesh_shared::events::EventType::ProductViewed, partition);
    backbone
        .js
        .publish_with_headers(subject, headers, vec![1, 2, 3].into())
        .await
        .unwrap()
        .await
        .unwrap();
    let good = viewed_by(user);
    backbone.publisher().publish(&good).await.unwrap();

    let mut running = start_consumer(&backbone, HashSet::new());
    assert_eq!(next(&mut running).await.event, good);
    let stats = running.stats.snapshot();
    assert_eq!(stats.skipped_newer, 2);
    assert_eq!(stats.dead_lettered, 0);
    let dead_letter_stream = backbone.settings.streams.dead_letter_stream.clone();
    assert_eq!(backbone.message_count(&dead_letter_stream).await, 0);
    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_transient_failure_is_nakked_and_redelivered() {
    let backbone = TestBackbone::start().await;
    let event = viewed_by(UserId::new_v7());
    backbone.publisher().publish(&event).await.unwrap();
    let mut running = start_consumer(&backbone, HashSet::from([event.meta.event_id]));
    let delivery = next(&mut running).await;
    assert_eq!(delivery.event, event);
    assert_eq!(delivery.delivered, 2, "handled on the second delivery");
    let stats = running.stats.snapshot();
    assert_eq!((stats.nakked, stats.handled), (1, 1));
    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}

/// Blocks in the handler until released, to hold a message "in hand".
struct Gate {
    entered: mpsc::UnboundedSender<EventId>,
    release: Arc<tokio::sync::Notify>,
    done: Mutex<Vec<EventId>>,
}

impl EventHandler for Gate {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let _ = self.entered.send(delivery.event.meta.event_id);
        self.release.notified().await;
        self.done.lock().unwrap().push(delivery.event.meta.event_id);
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_finishes_the_message_in_hand_and_acks_it() {
    let backbone = TestBackbone::start().await;
    let user = UserId::new_v7();
    let event = viewed_by(user);
    backbone.publisher().publish(&event).await.unwrap();

    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(Gate {
        entered: entered_tx,
        release: release.clone(),
        done: Mutex::default(),
    });
    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    let runner = ConsumerRunner::new(
        backbone.js.clone(),
        "drain",
        vec![partition],
        &backbone.settings.streams,
        &backbone.settings.consumer,
        gate.clone(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    let in_hand = tokio::time::timeout(WAIT, entered.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_hand, event.meta.event_id);

    shutdown.cancel();
    assert!(
        !task.is_finished(),
        "shutdown waits for the message in hand"
    );
    release.notify_one();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(*gate.done.lock().unwrap(), vec![event.meta.event_id]);

    let name = shopmesh_shared::nats::consumer_name("drain", partition);
    let stream = backbone
        .js
        .get_stream(backbone.settings.streams.partition_stream(partition))
        .await
        .unwrap();
    eventually(WAIT, "the drained message is acked", async || {
        let info = stream.consumer_info(&name).await.unwrap();
        info.num_ack_pending == 0 && info.ack_floor.stream_sequence == 1
    })
    .await;
}

#[tokio::test]
async fn publishing_fails_clearly_when_retries_run_out() {
    let mut backbone = TestBackbone::start().await;
    // No stream for the subjects: every attempt is refused by "no responders".
    let user = UserId::new_v7();
    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    backbone
        .js
        .delete_stream(backbone.settings.streams.partition_stream(partition))
        .await
        .unwrap();
    backbone.settings.publisher.attempts = 3;
    let event = viewed_by(user);
    let error = backbone.publisher().publish(&event).await.unwrap_err();
    match &error {
        PublishError::RetriesExhausted {
            event_id, attempts, ..
        } => {
            assert_eq!(*event_id, event.meta.event_id);
            assert_eq!(*attempts, 3);
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("after 3 attempts"), "{text}");
    assert!(text.contains("shopmesh.events.product.viewed."), "{text}");
}

#[tokio::test]
async fn a_publish_rides_out_a_broker_restart() {
    let mut backbone = TestBackbone::start().await;
    backbone.settings.publisher.attempts = 50;
    backbone.settings.publisher.max_backoff = Duration::from_millis(200);
    let publisher = backbone.publisher();
    backbone.server.kill();
    let user = UserId::new_v7();
    let event = viewed_by(user);
    let publishing = tokio::spawn({
        let event = event.clone();
        async move { publisher.publish(&event).await }
    });
    // The first attempts fail while the broker is down; start it again.
    eventually(WAIT, "the publisher retried", async || {
        publishing.is_finished()
            || backbone.client.connection_state() != async_nats::connection::State::Connected
    })
    .await;
    backbone.server.restart();
    let published = tokio::time::timeout(WAIT, publishing)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    let stored = backbone.stored(partition, published.stream_sequence).await;
    assert_eq!(
        stored.headers.get(h::MESSAGE_ID).unwrap().as_str(),
        event.meta.event_id.to_string()
    );
}

#[tokio::test]
async fn a_server_older_than_2_10_is_refused_by_name_and_version() {
    // The machine's Debian package is 2.9.10; use it when it is there.
    let old = std::env::var_os("NATS_OLD_SERVER_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/sbin/nats-server".into());
    let too_old = shopmesh_shared::testkit::nats_server_version(&old)
        .map(|v| v < shopmesh_shared::nats::ServerVersion::minimum())
        .unwrap_or(false);
    if !too_old {
        eprintln!(
            "no nats-server < 2.10 at {}; version check covered by unit tests",
            old.display()
        );
        return;
    }
    assert!(shopmesh_shared::testkit::check_nats_server(old.clone()).is_err());
    let server = shopmesh_shared::testkit::NatsServer::start_with(old);
    let settings = shopmesh_shared::testkit::backbone_settings(&server);
    let error = connect(&settings.nats, "test").await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, BackboneError::ServerTooOld { .. }),
        "{text}"
    );
    assert!(text.contains("version 2.9.10"), "{text}");
    assert!(text.contains(">= 2.10.23"), "{text}");
}

/// Applies each partition's events at most once and in stream order, the
/// way the analytics actors do: a delivery at or below the last applied
/// sequence is taken for a redelivery and skipped. Holds its first delivery
/// until released.
struct InOrder {
    last: Mutex<u64>,
    applied: Mutex<Vec<u64>>,
    holding: mpsc::UnboundedSender<u64>,
    release: tokio::sync::Semaphore,
}

impl EventHandler for InOrder {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        if self.applied.lock().unwrap().is_empty() {
            let _ = self.holding.send(delivery.stream_sequence);
            let _permit = self.release.acquire().await.unwrap();
        }
        let mut last = self.last.lock().unwrap();
        if delivery.stream_sequence > *last {
            *last = delivery.stream_sequence;
            self.applied.lock().unwrap().push(delivery.stream_sequence);
        }
        Ok(())
    }

    async fn resume_sequence(&self, _: shopmesh_shared::subjects::Partition) -> Option<u64> {
        Some(*self.last.lock().unwrap() + 1)
    }
}

/// A delivery that never reaches the runner (here taken by another client
/// pulling from the same consumer; in production lost with a server that
/// died) would come back only after `ack_wait`, behind later ones, and an
/// in-order handler would skip it for good. The runner sees the skipped
/// consumer sequence and restarts the consumer where the handler stands.
#[tokio::test]
async fn a_delivery_lost_on_the_way_restarts_an_in_order_handler_where_it_stands() {
    let mut backbone = TestBackbone::start().await;
    // One message per pull keeps the rest at the server for the thief; the
    // redelivery of what it takes would come long after this test's waits.
    backbone.settings.consumer.batch = 1;
    backbone.settings.consumer.ack_wait = Duration::from_secs(120);
    let user = UserId::new_v7();
    let partition = partition_for(Some(&user), backbone.settings.streams.partitions);
    let publisher = backbone.publisher();
    let mut sequences = Vec::new();
    for _ in 0..10 {
        sequences.push(
            publisher
                .publish(&viewed_by(user))
                .await
                .unwrap()
                .stream_sequence,
        );
    }

    let (holding_tx, mut holding) = mpsc::unbounded_channel();
    let handler = Arc::new(InOrder {
        last: Mutex::new(0),
        applied: Mutex::default(),
        holding: holding_tx,
        release: tokio::sync::Semaphore::new(0),
    });
    let runner = ConsumerRunner::new(
        backbone.js.clone(),
        "ordered",
        vec![partition],
        &backbone.settings.streams,
        &backbone.settings.consumer,
        handler.clone(),
    );
    let stats = runner.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    let first = tokio::time::timeout(WAIT, holding.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, sequences[0]);

    // While the runner holds the first message, another client takes one
    // delivery of the same consumer and never acknowledges it.
    let consumer: async_nats::jetstream::consumer::PullConsumer = backbone
        .js
        .get_stream(backbone.settings.streams.partition_stream(partition))
        .await
        .unwrap()
        .get_consumer(&shopmesh_shared::nats::consumer_name("ordered", partition))
        .await
        .unwrap();
    let mut taken = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let stolen = futures::StreamExt::next(&mut taken)
        .await
        .expect("the other client gets a delivery")
        .unwrap();
    let stolen = stolen.info().unwrap().stream_sequence;
    assert!(sequences.contains(&stolen) && stolen != first);

    handler.release.add_permits(1);
    eventually(WAIT, "every event applied once, in order", async || {
        *handler.applied.lock().unwrap() == sequences
    })
    .await;
    assert_eq!(stats.snapshot().restarts, 1);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_changed_partition_count_is_refused_with_what_to_do() {
    let backbone = TestBackbone::start().await;
    let mut streams = backbone.settings.streams.clone();
    let made_with = streams.partitions.get();
    // Again with the same count: accepted, and the count is on record.
    let provisioned = provision_streams(&backbone.js, &streams).await.unwrap();
    assert_eq!(
        provisioned.events[0]
            .config
            .metadata
            .get(PARTITIONS_METADATA),
        Some(&made_with.to_string()),
        "the count is recorded"
    );
    for other in [made_with / 2, made_with * 2] {
        streams.partitions = PartitionCount::new(other).unwrap();
        let error = provision_streams(&backbone.js, &streams).await.unwrap_err();
        assert!(
            matches!(&error, BackboneError::PartitionCountChanged { configured, found }
                if *configured == other && *found == made_with.to_string()),
            "{error:?}"
        );
        assert!(error.to_string().contains("SHOPMESH_PARTITIONS"), "{error}");
    }

    // Streams of a version that recorded no count: one past the last
    // partition gives a larger count away.
    for (partition, name) in backbone.settings.streams.partition_streams() {
        let mut config = events_stream_config(&backbone.settings.streams, partition);
        config.metadata.clear();
        backbone.js.delete_stream(&name).await.unwrap();
        backbone.js.create_stream(config).await.unwrap();
    }
    streams.partitions = PartitionCount::new(made_with / 2).unwrap();
    let error = provision_streams(&backbone.js, &streams).await.unwrap_err();
    assert!(
        matches!(&error, BackboneError::PartitionCountChanged { found, .. }
            if *found == format!("more than {}", made_with / 2)),
        "{error:?}"
    );
    // The same count as before goes through, and records it.
    let again = provision_streams(&backbone.js, &backbone.settings.streams)
        .await
        .unwrap();
    assert_eq!(
        again.events[0].config.metadata.get(PARTITIONS_METADATA),
        Some(&made_with.to_string())
    );
}

#[tokio::test]
async fn a_single_events_stream_of_an_earlier_version_is_refused_with_what_to_do() {
    let backbone = TestBackbone::start().await;
    let streams = &backbone.settings.streams;
    for (_, name) in streams.partition_streams() {
        backbone.js.delete_stream(&name).await.unwrap();
    }
    // The layout before a stream per partition: one stream for every event.
    backbone
        .js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "SHOPMESH_EVENTS".into(),
            subjects: vec!["shopmesh.events.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let error = provision_streams(&backbone.js, streams).await.unwrap_err();
    assert!(
        matches!(
            &error,
            shopmesh_shared::nats::BackboneError::SingleEventsStream { stream } if stream == "SHOPMESH_EVENTS"
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("shopmesh provision --retire-single-stream"),
        "{text}"
    );

    // Once it is gone, provisioning makes every partition's stream again.
    backbone.js.delete_stream("SHOPMESH_EVENTS").await.unwrap();
    let provisioned = provision_streams(&backbone.js, streams).await.unwrap();
    assert_eq!(provisioned.events.len(), 8);
}
