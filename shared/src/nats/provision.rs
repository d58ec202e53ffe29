//! Creating or updating the events and dead-letter streams, idempotently.

use super::BackboneError;
use crate::settings::StreamSettings;
use crate::subjects::{DEAD_LETTER_WILDCARD, EVENTS_WILDCARD};
use async_nats::jetstream::{self, stream};

/// The configuration of the events stream that `settings` describe.
pub fn events_stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: settings.events_stream.clone(),
        description: Some("shopmesh behaviour and business events".into()),
        subjects: vec![EVENTS_WILDCARD.into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: settings.max_age,
        max_bytes: i64::try_from(settings.max_bytes).unwrap_or(i64::MAX),
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
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
    pub events: stream::Info,
    pub dead_letter: stream::Info,
}

/// Creates both streams, or updates them to match `settings`. Safe to run from
/// every service at every start.
pub async fn provision_streams(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<ProvisionedStreams, BackboneError> {
    let ensure = |config: stream::Config| async move {
        let stream = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|source| BackboneError::Provision { stream, source })
    };
    Ok(ProvisionedStreams {
        events: ensure(events_stream_config(settings)).await?,
        dead_letter: ensure(dead_letter_stream_config(settings)).await?,
    })
}
