//! Creating or updating the events streams (one per partition) and the
//! dead-letter stream, idempotently.

use super::BackboneError;
use crate::settings::StreamSettings;
use crate::subjects::{DEAD_LETTER_WILDCARD, EVENTS_WILDCARD, Partition, partition_filter};
use async_nats::jetstream::{self, stream};
use futures::future::try_join_all;
use std::collections::HashMap;

/// The events streams' metadata key recording the partition count they were
/// made with (see [`check_partition_count`]).
pub const PARTITIONS_METADATA: &str = "shopmesh.partitions";

/// The configuration of `partition`'s events stream: the subjects of that
/// partition only, and its share of the byte limit.
pub fn events_stream_config(settings: &StreamSettings, partition: Partition) -> stream::Config {
    stream::Config {
        name: settings.partition_stream(partition),
        description: Some(format!(
            "shopmesh behaviour and business events, partition {partition}"
        )),
        subjects: vec![partition_filter(partition)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: settings.max_age,
        max_bytes: i64::try_from(settings.partition_max_bytes()).unwrap_or(i64::MAX),
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        metadata: HashMap::from([(
            PARTITIONS_METADATA.to_owned(),
            settings.partitions.get().to_string(),
        )]),
        ..Default::default()
    }
}

/// The configuration of the dead-letter stream. It discards *new* messages
/// when full: evidence of a bad producer must not push out older evidence.
pub fn dead_letter_stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: settings.dead_letter_stream.clone(),
        description: Some("shopmesh messages that no consumer could decode".into()),
        subjects: vec![DEAD_LETTER_WILDCARD.into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_age: settings.dead_letter_max_age,
        max_bytes: 256 << 20,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

/// What provisioning found or made.
#[derive(Debug, Clone)]
pub struct ProvisionedStreams {
    /// One per partition, in partition order.
    pub events: Vec<stream::Info>,
    pub dead_letter: stream::Info,
}

/// Creates every stream, or updates them to match `settings`. Safe to run
/// from every service at every start.
pub async fn provision_streams(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<ProvisionedStreams, BackboneError> {
    check_partition_count(js, settings).await?;
    let ensure = |config: stream::Config| async move {
        let stream = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|source| BackboneError::Provision { stream, source })
    };
    // Concurrently: one request each, and a cluster takes a few hundred
    // milliseconds to place a stream.
    let events = try_join_all(
        settings
            .partitions
            .all()
            .map(|partition| ensure(events_stream_config(settings, partition))),
    );
    let (events, dead_letter) =
        match futures::try_join!(events, ensure(dead_letter_stream_config(settings))) {
            Ok(provisioned) => provisioned,
            Err(error) => return Err(refuse_single_stream(js, settings).await.unwrap_or(error)),
        };
    Ok(ProvisionedStreams {
        events,
        dead_letter,
    })
}

/// Why provisioning failed when the events are still in one stream named
/// `SHOPMESH_STREAM` (shopmesh before the stream per partition): its
/// subjects overlap every partition's, so nats-server refuses the new
/// streams with a message that does not say what to do.
async fn refuse_single_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Option<BackboneError> {
    let mut stream = js.get_stream(&settings.events_stream).await.ok()?;
    let subjects = &stream.info().await.ok()?.config.subjects;
    subjects
        .iter()
        .any(|s| s == EVENTS_WILDCARD)
        .then(|| BackboneError::SingleEventsStream {
            stream: settings.events_stream.clone(),
        })
}

/// Refuses a partition count other than the one the events streams were
/// made with. A user's partition is their id modulo the count: with another
/// count their new events would land in another partition than their old
/// events and their state's snapshot, and some streams would go unread.
/// Streams made before the count was recorded in their metadata are
/// checked for a stream past the last partition (a larger count).
async fn check_partition_count(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), BackboneError> {
    let configured = settings.partitions.get();
    let Ok(first) = js.get_stream(settings.stream_of_index(0)).await else {
        // A new backbone (or one this user may not read): nothing to check.
        return Ok(());
    };
    // get_stream fetched the stream's info already.
    let recorded = first
        .cached_info()
        .config
        .metadata
        .get(PARTITIONS_METADATA)
        .cloned();
    let found = match recorded {
        Some(count) => (count != configured.to_string()).then_some(count),
        None => js
            .get_stream(settings.stream_of_index(configured))
            .await
            .ok()
            .map(|_| format!("more than {configured}")),
    };
    match found {
        Some(found) => Err(BackboneError::PartitionCountChanged { configured, found }),
        None => Ok(()),
    }
}
