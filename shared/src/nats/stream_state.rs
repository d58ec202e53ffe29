//! What the events streams hold, summed over every partition's stream.

use super::BackboneError;
use crate::settings::StreamSettings;
use async_nats::jetstream;
use futures::future::try_join_all;

/// How many events every partition's stream holds now, together. One
/// stream-info request per partition, sent concurrently.
pub async fn stored_event_count(
    js: &jetstream::Context,
    streams: &StreamSettings,
) -> Result<u64, BackboneError> {
    let counts = try_join_all(streams.partition_streams().map(|(_, name)| async move {
        // get_stream asks the server for the stream's info and keeps it.
        js.get_stream(&name)
            .await
            .map(|stream| stream.cached_info().state.messages)
            .map_err(|source| BackboneError::StreamUnavailable {
                stream: name,
                source,
            })
    }))
    .await?;
    Ok(counts.into_iter().sum())
}
