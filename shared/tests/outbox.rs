//! The transactional outbox and the behaviour buffer, on real databases
//! (SQLite, and Postgres when TEST_POSTGRES_URL is set) and a real nats-server.

use shopmesh_shared::behaviour::BehaviourPublisher;
use shopmesh_shared::db::{DatabaseKind, DatabaseSettings, connect};
use shopmesh_shared::db_writes::WriteGate;
use shopmesh_shared::events::{Event, UserId};
use shopmesh_shared::nats::EventPublisher;
use shopmesh_shared::nats::headers as h;
use shopmesh_shared::outbox::{self, OutboxRelay, RelaySettings};
use shopmesh_shared::settings::Env;
use shopmesh_shared::testkit::{TestBackbone, TestDatabase, eventually, test_databases, viewed_by};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// The relay of `pool`'s outbox, with its own write queue.
fn relay_over(pool: &sqlx::AnyPool, kind: DatabaseKind, publisher: &EventPublisher) -> OutboxRelay {
    OutboxRelay::new(
        pool.clone(),
        WriteGate::new(kind),
        publisher.clone(),
        relay_settings(),
    )
}

async fn pool_for(database: &TestDatabase) -> (sqlx::AnyPool, DatabaseKind) {
    let settings = DatabaseSettings::from_env(
        &Env::from_pairs([("DATABASE_URL", database.url.as_str())]),
        "test",
    )
    .unwrap();
    let pool = connect(&settings).await.unwrap();
    outbox::ensure_schema(&pool, settings.kind).await.unwrap();
    // Twice: creating the schema is idempotent.
    outbox::ensure_schema(&pool, settings.kind).await.unwrap();
    (pool, settings.kind)
}

fn relay_settings() -> RelaySettings {
    RelaySettings::from_env(&Env::from_pairs([("SHOPMESH_OUTBOX_POLL", "50ms")])).unwrap()
}

/// Enqueues `events` in one committed transaction.
async fn commit(pool: &sqlx::AnyPool, publisher: &EventPublisher, events: &[Event]) {
    let mut tx = pool.begin().await.unwrap();
    for event in events {
        outbox::enqueue(&mut tx, &publisher.prepare(event).unwrap())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The event ids in the events streams, in the order they were stored.
async fn stream_ids(backbone: &TestBackbone) -> Vec<String> {
    let mut ids = Vec::new();
    for message in backbone.stored_events().await {
        ids.push(
            message
                .headers
                .get(h::MESSAGE_ID)
                .unwrap()
                .as_str()
                .to_owned(),
        );
    }
    ids
}

#[tokio::test]
async fn committed_events_are_relayed_once_in_order_and_rolled_back_ones_never() {
    for database in test_databases().await {
        let backbone = TestBackbone::start().await;
        let (pool, kind) = pool_for(&database).await;
        let publisher = backbone.publisher();
        let user = UserId::new_v7();
        let events: Vec<Event> = (0..20).map(|_| viewed_by(user)).collect();
        commit(&pool, &publisher, &events[..10]).await;

        let mut rolled_back = pool.begin().await.unwrap();
        let ghost = viewed_by(user);
        outbox::enqueue(&mut rolled_back, &publisher.prepare(&ghost).unwrap())
            .await
            .unwrap();
        rolled_back.rollback().await.unwrap();

        commit(&pool, &publisher, &events[10..]).await;
        let relay = relay_over(&pool, kind, &publisher);
        assert_eq!(relay.relay_once(100).await.unwrap(), 20);
        assert_eq!(
            relay.relay_once(100).await.unwrap(),
            0,
            "nothing left, nothing re-sent"
        );

        let expected: Vec<String> = events.iter().map(|e| e.meta.event_id.to_string()).collect();
        assert_eq!(stream_ids(&backbone).await, expected, "{:?}", database.kind);
        assert_eq!(outbox::backlog(&pool).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn rows_enqueued_together_are_relayed_in_order_and_marked_once_in_large_rounds() {
    for database in test_databases().await {
        let backbone = TestBackbone::start().await;
        let (pool, kind) = pool_for(&database).await;
        let publisher = backbone.publisher();
        let user = UserId::new_v7();
        // More rows than one UPDATE marks (500), in one round; enqueued
        // together, in more than one INSERT (1 000 rows each).
        let events: Vec<Event> = (0..1_203).map(|_| viewed_by(user)).collect();
        let outbound: Vec<_> = events
            .iter()
            .map(|e| publisher.prepare(e).unwrap())
            .collect();
        let mut tx = pool.begin().await.unwrap();
        outbox::enqueue_all(&mut tx, &outbound).await.unwrap();
        tx.commit().await.unwrap();
        let relay = relay_over(&pool, kind, &publisher);
        assert_eq!(relay.relay_once(2_000).await.unwrap(), 1_203);
        assert_eq!(
            outbox::backlog(&pool).await.unwrap(),
            0,
            "{:?}",
            database.kind
        );
        assert_eq!(relay.relay_once(2_000).await.unwrap(), 0, "nothing re-sent");
        let expected: Vec<String> = events.iter().map(|e| e.meta.event_id.to_string()).collect();
        assert_eq!(stream_ids(&backbone).await, expected, "in order, once");
        // Each row got its own message's stream sequence: one partition's
        // stream (one user), so increasing with the rows.
        let sequences: Vec<i64> =
            sqlx::query_scalar("SELECT stream_sequence FROM shopmesh_outbox ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(sequences.len(), 1_203);
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    }
}

#[tokio::test]
async fn with_nats_down_writes_succeed_and_every_event_arrives_once_when_it_returns() {
    for database in test_databases().await {
        let mut backbone = TestBackbone::start().await;
        // Fail fast while the broker is down; the relay retries by itself.
        backbone.settings.publisher.attempts = 2;
        backbone.settings.publisher.ack_timeout = Duration::from_millis(300);
        let publisher = backbone.publisher();
        let (pool, kind) = pool_for(&database).await;
        let relay = relay_over(&pool, kind, &publisher);
        let wake = relay.notifier();
        let shutdown = CancellationToken::new();
        let relaying = tokio::spawn(relay.run(shutdown.clone()));

        backbone.server.kill();
        let user = UserId::new_v7();
        let events: Vec<Event> = (0..30).map(|_| viewed_by(user)).collect();
        for chunk in events.chunks(3) {
            commit(&pool, &publisher, chunk).await;
            wake.notify_one();
        }
        assert_eq!(
            outbox::backlog(&pool).await.unwrap(),
            30,
            "the writes committed without NATS"
        );

        backbone.server.restart();
        eventually(
            WAIT,
            "the outbox drained after NATS came back",
            async || outbox::backlog(&pool).await.unwrap() == 0,
        )
        .await;
        shutdown.cancel();
        relaying.await.unwrap();

        let expected: Vec<String> = events.iter().map(|e| e.meta.event_id.to_string()).collect();
        assert_eq!(
            stream_ids(&backbone).await,
            expected,
            "each event once, in order ({:?})",
            database.kind
        );
    }
}

#[tokio::test]
async fn the_trace_of_the_writing_request_travels_with_the_row() {
    let backbone = TestBackbone::start().await;
    let database = TestDatabase::sqlite();
    let (pool, kind) = pool_for(&database).await;
    let publisher = backbone.publisher();
    let event = viewed_by(UserId::new_v7());
    let outbound = publisher.prepare(&event).unwrap();
    let traceparent = outbound.trace.traceparent.clone();
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, &outbound).await.unwrap();
    tx.commit().await.unwrap();
    relay_over(&pool, kind, &publisher)
        .relay_once(10)
        .await
        .unwrap();
    let stored = backbone.stored_events().await.remove(0);
    assert_eq!(
        stored.headers.get(h::TRACEPARENT).unwrap().as_str(),
        traceparent
    );
}

#[tokio::test]
async fn behaviour_events_never_block_and_drops_are_counted() {
    let mut backbone = TestBackbone::start().await;
    let (behaviour, task) = BehaviourPublisher::spawn(backbone.publisher(), 64);
    let user = UserId::new_v7();
    for _ in 0..10 {
        behaviour.emit(viewed_by(user));
    }
    eventually(WAIT, "ten behaviour events stored", async || {
        backbone.event_count().await == 10
    })
    .await;
    let stats = behaviour.stats();
    assert_eq!(stats.published.load(Ordering::Relaxed), 10);

    // Broker down: emit returns at once however many events come; what does
    // not fit is dropped and counted, what fails is dropped and counted.
    backbone.server.kill();
    let started = std::time::Instant::now();
    for _ in 0..1_000 {
        behaviour.emit(viewed_by(user));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "emit must not wait"
    );
    assert!(stats.dropped_full.load(Ordering::Relaxed) > 0);
    drop(behaviour);
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    let accounted = stats.published.load(Ordering::Relaxed) + stats.dropped();
    assert_eq!(
        accounted, 1_010,
        "every event is published or counted as dropped"
    );
}

/// SQLite connections are handed out without a ping (a file does not drop
/// them, and the ping is a second round trip to the connection's thread per
/// query); Postgres connections are tested first, so that ones the server
/// dropped are replaced instead of failing a request.
#[tokio::test]
async fn only_postgres_connections_are_pinged_before_use() {
    for database in test_databases().await {
        let env = Env::from_pairs([("DATABASE_URL", database.url.as_str())]);
        let pool = connect(&DatabaseSettings::from_env(&env, "outbox").unwrap())
            .await
            .unwrap();
        assert_eq!(
            pool.options().get_test_before_acquire(),
            database.kind == DatabaseKind::Postgres,
            "{:?}",
            database.kind
        );
    }
}
