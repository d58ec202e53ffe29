//! The event backbone over NATS JetStream: connecting (with a server version
//! check), stream provisioning, the publisher, the consumer runner, and the
//! message headers they share.

mod connect;
mod consumer;
pub mod headers;
mod provision;
mod publisher;
mod stream_state;

pub use connect::{MIN_SERVER_VERSION, ServerVersion, connect, jetstream_context};
pub use consumer::{
    ConsumerRunner, ConsumerStats, ConsumerStatsSnapshot, Delivery, EventHandler, HandlerError,
    consumer_name, restart_consumer,
};
pub use provision::{
    PARTITIONS_METADATA, ProvisionedStreams, dead_letter_stream_config, events_stream_config,
    provision_streams,
};
pub use publisher::{
    EventPublisher, OutboundEvent, PendingPublish, PublishError, Published, PublisherStats,
};
pub use stream_state::stored_event_count;

/// What can go wrong setting up or running the backbone (publishing has its
/// own [`PublishError`]).
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error(
        "NATS server at {url} is version {found}; shopmesh needs nats-server >= {needed} \
         (JetStream fixes and consumer filter_subjects). Run scripts/ensure-nats.sh or point NATS_URL at a newer server"
    )]
    ServerTooOld {
        url: String,
        found: String,
        needed: &'static str,
    },
    #[error("cannot provision stream {stream}: {source}")]
    Provision {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error(
        "stream {stream} holds every partition's events, as shopmesh did before each partition \
         got a stream of its own ({stream}_<partition>); its subjects overlap the new streams'. \
         Let analytics consume it to the end, then retire it with `shopmesh provision \
         --retire-single-stream` (as the operator, NATS user admin) and start again: analytics \
         keeps its figures and reads the new streams from their start"
    )]
    SingleEventsStream { stream: String },
    #[error(
        "the events streams were made with {found} partitions and SHOPMESH_PARTITIONS is \
         {configured}: a user's partition is their id modulo the count, so it cannot change \
         under existing streams. Set SHOPMESH_PARTITIONS to the streams' count (32 was the \
         default before 8), or start from an empty NATS store"
    )]
    PartitionCountChanged { configured: u16, found: String },
    #[error("stream {stream} is not available: {source}")]
    StreamUnavailable {
        stream: String,
        #[source]
        source: async_nats::jetstream::context::GetStreamError,
    },
    #[error("cannot create consumer {consumer}: {source}")]
    Consumer {
        consumer: String,
        #[source]
        source: async_nats::jetstream::stream::ConsumerError,
    },
    #[error("consumer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
