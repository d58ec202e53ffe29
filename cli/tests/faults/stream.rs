//! The events streams (one per partition) read back whole, as the ground
//! truth the fault tests compare the services with.

use async_nats::jetstream;
use futures::StreamExt;
use shopmesh_shared::events::{Event, EventId, EventPayload, OrderId, ProductId, UserId};
use shopmesh_shared::nats::headers::{MESSAGE_ID, decode_message};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// The events streams are this prefix and a partition index.
pub const EVENTS_STREAM_PREFIX: &str = "SHOPMESH_EVENTS_";

/// The events streams the server has, by partition, whatever the partition
/// count of the test.
pub async fn events_streams(js: &jetstream::Context) -> Result<Vec<(u16, String)>, String> {
    let mut names = js.stream_names();
    let mut streams = Vec::new();
    while let Some(name) = names.next().await {
        let name = name.map_err(|e| format!("stream names: {e}"))?;
        if let Some(partition) = name
            .strip_prefix(EVENTS_STREAM_PREFIX)
            .and_then(|p| p.parse().ok())
        {
            streams.push((partition, name));
        }
    }
    streams.sort();
    Ok(streams)
}

/// One stored message.
pub struct Stored {
    pub sequence: u64,
    /// The partition whose stream holds it.
    pub partition: u16,
    pub message_id: String,
    /// `None` when it does not decode (no test publishes such messages).
    pub event: Option<Event>,
}

/// Every message of the events streams, partition by partition, each in
/// stream order. Each stream's read is retried on its own for up to two
/// minutes: right after a cluster lost a node, JetStream requests can time
/// out until a stream's new leader answers, and an ordered consumer placed
/// on the lost node never answers (a new one is placed again).
pub async fn read_stream(js: &jetstream::Context) -> Vec<Stored> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let streams = retried(deadline, "listing the events streams", async || {
        events_streams(js).await
    })
    .await;
    let mut out = Vec::new();
    for (partition, name) in streams {
        let messages = retried(deadline, "reading an events stream", async || {
            tokio::time::timeout(
                Duration::from_secs(20),
                try_read_partition(js, partition, &name),
            )
            .await
            .unwrap_or_else(|_| Err(format!("{name}: no message for 20s")))
        })
        .await;
        out.extend(messages);
    }
    out
}

/// `attempt`'s value, tried again after a short pause until `deadline`;
/// panics with the last error then.
async fn retried<T>(
    deadline: tokio::time::Instant,
    what: &str,
    mut attempt: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) if tokio::time::Instant::now() < deadline => {
                eprintln!("{what} failed, retrying: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("{what} failed until the deadline: {error}"),
        }
    }
}

async fn try_read_partition(
    js: &jetstream::Context,
    partition: u16,
    name: &str,
) -> Result<Vec<Stored>, String> {
    let mut out = Vec::new();
    let mut stream = js
        .get_stream(name)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let last = stream
        .info()
        .await
        .map_err(|e| format!("{name} info: {e}"))?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(out);
    }
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .map_err(|e| format!("ordered consumer on {name}: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("messages: {e}"))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| format!("message: {e}"))?;
        let sequence = message
            .info()
            .map_err(|e| format!("info: {e}"))?
            .stream_sequence;
        let message_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let event = decode_message(message.headers.as_ref(), &message.payload).ok();
        out.push(Stored {
            sequence,
            partition,
            message_id,
            event,
        });
        if sequence >= last {
            break;
        }
    }
    Ok(out)
}

/// How many messages the events streams hold together.
pub async fn stored_count(js: &jetstream::Context) -> Option<u64> {
    let mut count = 0;
    for (_, name) in events_streams(js).await.ok()? {
        let mut stream = js.get_stream(&name).await.ok()?;
        count += stream.info().await.ok()?.state.messages;
    }
    Some(count)
}

/// What a read of the stream says, indexed for the assertions.
pub struct StreamFacts {
    pub total: usize,
    /// Event ids seen more than once (must stay empty: the outbox and the
    /// publisher's retries reuse the id, and the stream drops repeats).
    pub duplicate_ids: Vec<String>,
    pub ids: HashSet<EventId>,
    pub by_type: BTreeMap<String, u64>,
    /// `order.placed` events per order id.
    pub placed: HashMap<OrderId, u32>,
    pub registered: HashSet<UserId>,
    pub created: HashSet<ProductId>,
}

impl StreamFacts {
    pub fn of(messages: &[Stored]) -> Self {
        let mut seen = HashSet::new();
        let mut facts = Self {
            total: messages.len(),
            duplicate_ids: Vec::new(),
            ids: HashSet::new(),
            by_type: BTreeMap::new(),
            placed: HashMap::new(),
            registered: HashSet::new(),
            created: HashSet::new(),
        };
        for stored in messages {
            if !seen.insert(stored.message_id.clone()) {
                facts.duplicate_ids.push(stored.message_id.clone());
            }
            let Some(event) = &stored.event else { continue };
            facts.ids.insert(event.meta.event_id);
            *facts
                .by_type
                .entry(event.event_type().as_str().to_owned())
                .or_default() += 1;
            match &event.payload {
                EventPayload::OrderPlaced(p) => *facts.placed.entry(p.order_id).or_default() += 1,
                EventPayload::UserRegistered(_) => {
                    facts.registered.extend(event.meta.user_id);
                }
                EventPayload::ProductCreated(p) => {
                    facts.created.insert(p.product_id);
                }
                _ => {}
            }
        }
        facts
    }

    pub fn count(&self, event_type: &str) -> u64 {
        self.by_type.get(event_type).copied().unwrap_or(0)
    }
}
