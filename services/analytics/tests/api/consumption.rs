//! Consumption: exactly-once by sequence at the actor, dead letters for
//! garbage, skips for unknown types, and the partition keeps going.

use crate::helpers::*;
use actix::Actor;
use async_nats::HeaderMap;
use shopmesh_analytics::actor::{Apply, ApplyBatch, Inspect, PartitionActor};
use shopmesh_analytics::clock::Clock;
use shopmesh_analytics::items::ItemGraph;
use shopmesh_analytics::run_system;
use shopmesh_analytics::settings::{AggregateSettings, SnapshotSettings};
use shopmesh_analytics::state::{PartitionState, UserProfile};
use shopmesh_shared::events::UserId;
use shopmesh_shared::nats::headers;
use shopmesh_shared::nats::{Delivery, consumer_name};
use shopmesh_shared::subjects::{Partition, event_subject, partition_for};
use shopmesh_shared::telemetry::EventSpan;
use shopmesh_shared::testkit::{TestBackbone, eventually, viewed_by};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_redelivered_sequence_changes_nothing() {
    run_system(|| async {
        let partition = Partition::new(3, partition_count()).unwrap();
        let snapshots = SnapshotSettings {
            every: 1_000_000,
            interval: Duration::from_secs(3600),
            bucket: "unused".into(),
        };
        let start_actor = |items: Arc<ItemGraph>| {
            // Snapshots are never due: the receiver can go.
            let (uploads, _) = tokio::sync::watch::channel(None);
            PartitionActor::new(
                partition,
                PartitionState::default(),
                None,
                AggregateSettings::default(),
                &snapshots,
                Clock::system(),
                16,
                uploads,
                items,
            )
            .start()
        };
        let items = Arc::new(ItemGraph::default());
        let actor = start_actor(items.clone());
        let mut generator = SyntheticShop::new(1, 3, 4);
        let events: Vec<_> = (0..50).map(|_| generator.event()).collect();
        let delivery = |sequence: u64, n: usize| Delivery {
            event: events[n].clone(),
            partition,
            stream_sequence: sequence,
            delivered: 1,
            subject: String::new(),
        };
        let mut expected = PartitionState::default();
        for (n, event) in events.iter().enumerate() {
            let sequence = 10 + n as u64 * 2;
            expected.apply(sequence, event, &AggregateSettings::default());
            actor
                .send(Apply {
                    delivery: delivery(sequence, n),
                    parent: EventSpan::none(),
                })
                .await
                .unwrap();
            // The same sequence again (a redelivery), and an older one (a replay).
            for (again, m) in [(sequence, n), (sequence - 1, 0)] {
                actor
                    .send(Apply {
                        delivery: delivery(again, m),
                        parent: EventSpan::none(),
                    })
                    .await
                    .unwrap();
            }
        }
        let state = actor
            .send(Inspect(Box::new(|view| view.state.clone())))
            .await
            .unwrap();
        assert_eq!(state, expected);
        assert_eq!(state.applied, 50);
        // The product-keyed view saw each change once too.
        assert_eq!(items.totals(), ItemGraph::from_states([&expected]).totals());

        // A whole batch in one message, replays included, ends the same.
        let batched = start_actor(Arc::new(ItemGraph::default()));
        let deliveries = (0..50)
            .flat_map(|n| {
                let sequence = 10 + n as u64 * 2;
                [
                    delivery(sequence, n),
                    delivery(sequence, n),
                    delivery(sequence - 1, 0),
                ]
            })
            .map(|d| (d, EventSpan::none()))
            .collect();
        batched.send(ApplyBatch { deliveries }).await.unwrap();
        let state = batched
            .send(Inspect(Box::new(|view| view.state.clone())))
            .await
            .unwrap();
        assert_eq!(state, expected);
    });
}

fn raw_headers(event_type: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        headers::MESSAGE_ID,
        uuid::Uuid::now_v7().to_string().as_str(),
    );
    h.insert(headers::EVENT_TYPE, event_type);
    h.insert(headers::SCHEMA_VERSION, "1");
    h.insert(headers::ENCODING, "bincode2");
    h
}

#[test]
fn garbage_is_dead_lettered_unknown_types_skipped_and_the_partition_goes_on() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let app = spawn_app(&backbone, &[]).await;
        let user = UserId::new_v7();
        let partition = partition_for(Some(&user), partition_count());
        let subject = event_subject(shopmesh_shared::events::EventType::ProductViewed, partition);

        let garbage = backbone
            .js
            .publish_with_headers(
                subject.clone(),
                raw_headers("product.viewed"),
                "garbage".into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        backbone
            .js
            .publish_with_headers(
                subject.clone(),
                raw_headers("product.wishlisted"),
                "x".into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        publish_all(&backbone, &[viewed_by(user), viewed_by(user)]).await;

        wait_caught_up(&[&app]).await;
        let stats = app.stats().await;
        assert_eq!(stats["consumer"]["dead_lettered"], 1);
        assert_eq!(stats["consumer"]["skipped_newer"], 1);
        assert_eq!(stats["consumer"]["handled"], 2);
        let profile: UserProfile = app.get_json(&format!("/users/{user}/profile")).await;
        assert_eq!(profile.counts["product.viewed"], 2);

        eventually(
            Duration::from_secs(10),
            "the dead letter is stored",
            async || backbone.message_count("SHOPMESH_DEADLETTER").await == 1,
        )
        .await;
        let dead = backbone
            .js
            .get_stream("SHOPMESH_DEADLETTER")
            .await
            .unwrap()
            .get_raw_message(1)
            .await
            .unwrap();
        assert_eq!(dead.subject.as_str(), "shopmesh.deadletter.analytics");
        assert_eq!(&dead.payload[..], b"garbage");
        assert_eq!(
            dead.headers
                .get(headers::DEAD_LETTER_SUBJECT)
                .unwrap()
                .as_str(),
            subject
        );
        assert_eq!(
            dead.headers
                .get(headers::DEAD_LETTER_SEQUENCE)
                .unwrap()
                .as_str(),
            garbage.sequence.to_string()
        );

        // The events the app applied are the ones on the stream, with ids and
        // trace context in their headers.
        let messages = read_stream(&backbone.js).await;
        assert_eq!(messages.len(), 4);
        assert!(messages[0].2.is_none() && messages[1].2.is_none());
        let stored = backbone
            .stored(partition_for(Some(&user), partition_count()), 3)
            .await;
        let event = headers::decode_message(Some(&stored.headers), &stored.payload).unwrap();
        assert_eq!(event.meta.user_id, Some(user));
        assert_eq!(
            stored.headers.get(headers::MESSAGE_ID).unwrap().as_str(),
            event.meta.event_id.to_string()
        );
        assert!(stored.headers.get(headers::TRACEPARENT).is_some());
        app.stop().await;
    });
}

/// A delivery that never reaches the app (here taken by another client
/// pulling from the partition's consumer; in production lost with a NATS
/// server that died) comes back only after `ack_wait`, behind later events,
/// where the exactly-once check would skip it as already applied. The app
/// sees the skipped consumer sequence and restarts the partition's consumer
/// after its last applied event: the state equals the recomputation.
#[test]
fn a_delivery_lost_on_the_way_is_still_applied_once_and_in_order() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        // One message per pull leaves the rest at the server for the other
        // client; its redelivery would come long after this test's waits.
        let app = spawn_app(
            &backbone,
            &[
                ("SHOPMESH_CONSUMER_BATCH", "1"),
                ("SHOPMESH_CONSUMER_ACK_WAIT", "300s"),
            ],
        )
        .await;
        let user = UserId::new_v7();
        let partition = partition_for(Some(&user), partition_count());
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = backbone
            .js
            .get_stream(format!("SHOPMESH_EVENTS_{partition}"))
            .await
            .unwrap()
            .get_consumer(&consumer_name("analytics", partition))
            .await
            .unwrap();
        // The app is pulling (so it has read where the consumer's deliveries
        // stand) before the other client's pull, which then waits at the
        // server beside the app's; deliveries go to both.
        eventually(Duration::from_secs(20), "the app pulls", async || {
            consumer.info().await.unwrap().num_waiting > 0
        })
        .await;
        let mut taken = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .unwrap();
        let events: Vec<_> = (0..20).map(|_| viewed_by(user)).collect();
        publish_all(&backbone, &events).await;
        let stolen = futures::StreamExt::next(&mut taken)
            .await
            .expect("the other client gets a delivery")
            .unwrap();
        assert_eq!(stolen.info().unwrap().delivered, 1);

        wait_caught_up(&[&app]).await;
        let states = recompute(
            &read_stream(&backbone.js).await,
            &AggregateSettings::default(),
        );
        let expected = states[&partition.index()]
            .user_profile(user, AggregateSettings::default().affinity_half_life)
            .unwrap();
        assert_eq!(expected.counts["product.viewed"], 20);
        let profile: UserProfile = app.get_json(&format!("/users/{user}/profile")).await;
        assert_profile_eq(&profile, &expected);
        let metrics = app.get("/metrics").await.text().await.unwrap();
        let restarts = format!(
            "shopmesh_consumer_restarts_total{{partition=\"{}\"}} 1",
            partition.index()
        );
        assert!(metrics.contains(&restarts), "{restarts} in\n{metrics}");
        app.stop().await;
    })
}
