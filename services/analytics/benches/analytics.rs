//! Benchmarks of the analytics service (no assertions; figures are printed).
//!
//! ```text
//! cargo bench -p shopmesh-analytics --bench analytics            # everything
//! cargo bench -p shopmesh-analytics --bench analytics -- apply   # one section
//! ```
//!
//! Sections: `apply` (pure `PartitionState::apply`, one core), `actors`
//! (decoded deliveries sent to the partition actors with `send().await`, as
//! the consumer does), `e2e` (publish, consume, apply, ack through JetStream,
//! as a ratio to raw async-nats publish + consume + ack of the same
//! messages), `latency` (publish -> visible in a query, at a fixed rate),
//! `memory` (resident bytes per user and per interaction), `raw-layouts` (raw
//! publish + consume with four stream and consumer layouts; only when named),
//! `apply-small` (`apply` with 1 000 users and 1 000 products, a state that
//! fits in the caches; only when named).
//! `apply` also measures the floor under it (`support/floor.rs`): the same
//! aggregates, and co-occurrence alone, in the leanest plain code.

#[path = "support/floor.rs"]
mod floor;

use actix::{Actor, Arbiter};
use async_nats::jetstream;
use futures::StreamExt;
use shopmesh_analytics::actor::{Apply, ApplyBatch, Inspect, PartitionActor};
use shopmesh_analytics::clock::Clock;
use shopmesh_analytics::hash::FastMap;
use shopmesh_analytics::settings::{AggregateSettings, Settings, SnapshotSettings};
use shopmesh_analytics::startup::Application;
use shopmesh_analytics::state::PartitionState;
use shopmesh_shared::events::*;
use shopmesh_shared::nats::{Delivery, EventPublisher, headers};
use shopmesh_shared::settings::Env;
use shopmesh_shared::subjects::{DEFAULT_PARTITIONS, Partition, PartitionCount, partition_for};
use shopmesh_shared::telemetry::EventSpan;
use shopmesh_shared::testkit::TestBackbone;
use std::time::{Duration, Instant};

/// The shipped default, so that the figures are those of a default install.
const PARTITIONS: u16 = DEFAULT_PARTITIONS;

struct Generator {
    seed: u64,
    users: Vec<UserId>,
    products: Vec<(ProductId, Category)>,
}

impl Generator {
    fn new(users: usize, products: usize) -> Self {
        let categories: Vec<Category> = (0..20)
            .map(|i| Category::parse(&format!("cat-{i}")).unwrap())
            .collect();
        Self {
            seed: 42,
            users: (0..users).map(|_| UserId::new_v7()).collect(),
            products: (0..products)
                .map(|i| {
                    (
                        ProductId::new_v7(),
                        categories[i % categories.len()].clone(),
                    )
                })
                .collect(),
        }
    }

    fn next(&mut self, below: usize) -> usize {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.seed >> 33) % below as u64) as usize
    }

    /// `product.created` for every product, in stock.
    fn catalogue(&self) -> Vec<Event> {
        self.products
            .iter()
            .enumerate()
            .map(|(i, (product_id, category))| {
                Event::new(
                    EventMeta::new("bench", None),
                    ProductCreated {
                        product_id: *product_id,
                        name: format!("product {i}"),
                        category: category.clone(),
                        price_cents: 100,
                        stock: 1_000_000,
                    },
                )
            })
            .collect()
    }

    /// The mix of a shop: mostly views, some cart adds, few orders.
    fn event(&mut self) -> Event {
        let i = self.next(self.users.len());
        let user = self.users[i];
        let i = self.next(self.products.len());
        let (product_id, category) = self.products[i].clone();
        let meta = EventMeta::new("bench", Some(user));
        match self.next(20) {
            0..=15 => Event::new(
                meta,
                ProductViewed {
                    product_id,
                    category,
                },
            ),
            16..=18 => Event::new(
                meta,
                CartItemAdded {
                    product_id,
                    category,
                    quantity: 1,
                    unit_price_cents: 100,
                },
            ),
            _ => Event::new(
                meta,
                OrderPlaced {
                    order_id: OrderId::new_v7(),
                    lines: vec![OrderLine {
                        product_id,
                        category,
                        quantity: 1,
                        unit_price_cents: 100,
                    }],
                    total_cents: 100,
                },
            ),
        }
    }
}

fn count() -> PartitionCount {
    PartitionCount::new(PARTITIONS).unwrap()
}

/// Deliveries grouped by partition, sequences increasing per partition.
fn deliveries(events: Vec<Event>) -> Vec<Vec<Delivery>> {
    let mut by_partition: Vec<Vec<Delivery>> = vec![Vec::new(); usize::from(PARTITIONS)];
    for (n, event) in events.into_iter().enumerate() {
        let partition = partition_for(event.meta.user_id.as_ref(), count());
        by_partition[usize::from(partition.index())].push(Delivery {
            event,
            partition,
            stream_sequence: n as u64 + 1,
            delivered: 1,
            subject: String::new(),
        });
    }
    by_partition
}

/// `apply` and its floor over `n` events of `users` and `products`.
fn bench_apply(users: usize, products: usize, n: usize) {
    println!("apply: {users} users, {products} products");
    let mut generator = Generator::new(users, products);
    let events: Vec<Event> = (0..n).map(|_| generator.event()).collect();
    for (label, config) in [
        ("default settings", AggregateSettings::default()),
        (
            "co-occurrence off (window 1)",
            AggregateSettings {
                cooccurrence_window: 1,
                ..AggregateSettings::default()
            },
        ),
    ] {
        println!("apply, {label}:");
        let ours = apply_rounds(&events, &config);
        if config == AggregateSettings::default() {
            let floor = floor::run(&events, &config, 3);
            println!(
                "apply / floor, one core, best rounds: {:.2} of the floor's every aggregate, {:.2} of its co-occurrence alone; the floor on two threads: every aggregate {:.0} events/s, co-occurrence alone {:.0} (best layout)",
                ours / floor.every_one_core,
                ours / floor.cooccurrence_one_core,
                floor.every_two_threads,
                floor
                    .cooccurrence_by_users
                    .max(floor.cooccurrence_by_products),
            );
        }
    }
    // The same events over the partition states, one core: what the actors
    // do, without the messaging; then also keeping the recommender's summed
    // view as the actors do (grouped per event): what the view costs
    // without a second thread.
    let config = AggregateSettings::default();
    for with_view in [false, true] {
        let items = shopmesh_analytics::items::ItemGraph::default();
        let mut buffers = shopmesh_analytics::items::GroupBuffers::default();
        let mut states: Vec<PartitionState> =
            (0..PARTITIONS).map(|_| PartitionState::default()).collect();
        let start = Instant::now();
        for (i, event) in events.iter().enumerate() {
            let state = &mut states
                [usize::from(partition_for(event.meta.user_id.as_ref(), count()).index())];
            if with_view {
                let mut sink = shopmesh_analytics::items::GroupedSink::new(&items, &mut buffers);
                state.apply_with(i as u64 + 1, event, &config, &mut sink);
                sink.finish();
            } else {
                state.apply(i as u64 + 1, event, &config);
            }
        }
        let elapsed = start.elapsed();
        let label = if with_view {
            " and the recommender's view"
        } else {
            ""
        };
        println!(
            "apply over {PARTITIONS} partition states{label} (one core, {n} events): {:.0} events/s",
            n as f64 / elapsed.as_secs_f64()
        );
    }
}

/// Three rounds of `apply` over one state; the best events/s.
fn apply_rounds(events: &[Event], config: &AggregateSettings) -> f64 {
    let n = events.len();
    let mut best: f64 = 0.0;
    for round in 0..3 {
        let mut state = PartitionState::default();
        let start = Instant::now();
        for (i, event) in events.iter().enumerate() {
            state.apply(i as u64 + 1, event, config);
        }
        let elapsed = start.elapsed();
        best = best.max(n as f64 / elapsed.as_secs_f64());
        println!(
            "apply (one core, one state, {n} events) round {round}: {:.0} events/s ({:.0} ns/event)",
            n as f64 / elapsed.as_secs_f64(),
            elapsed.as_nanos() as f64 / n as f64
        );
    }
    best
}

/// How deliveries reach an actor: one `send().await` each (what the consumer
/// does) or one message per batch of a partition's deliveries.
#[derive(Clone, Copy)]
enum Messaging {
    PerDelivery,
    Batched(usize),
}

async fn bench_actors(n: usize) {
    let mut generator = Generator::new(100_000, 10_000);
    let events: Vec<Event> = (0..n).map(|_| generator.event()).collect();
    for messaging in [Messaging::PerDelivery, Messaging::Batched(256)] {
        actors_round(&events, messaging).await;
    }
    // The work Spark's 2.2 M rows/s figure is for: a bare count per user key,
    // through the same arbiters, mailboxes and messages.
    for messaging in [Messaging::PerDelivery, Messaging::Batched(256)] {
        keyed_count_round(&events, messaging).await;
    }
}

/// Sends one partition's deliveries to its actor, in order, waiting for
/// each message to be handled as the consumer does.
async fn feed<A>(addr: actix::Addr<A>, deliveries: Vec<Delivery>, messaging: Messaging)
where
    A: Actor<Context = actix::Context<A>> + actix::Handler<Apply> + actix::Handler<ApplyBatch>,
{
    match messaging {
        Messaging::PerDelivery => {
            for delivery in deliveries {
                addr.send(Apply {
                    delivery,
                    parent: EventSpan::none(),
                })
                .await
                .unwrap();
            }
        }
        Messaging::Batched(size) => {
            let mut deliveries = deliveries.into_iter().peekable();
            while deliveries.peek().is_some() {
                let batch = deliveries
                    .by_ref()
                    .take(size)
                    .map(|d| (d, EventSpan::none()))
                    .collect();
                addr.send(ApplyBatch { deliveries: batch }).await.unwrap();
            }
        }
    }
}

/// Feeds every partition's deliveries to its actor concurrently; the time
/// until all were handled.
async fn feed_all<A>(actors: &[actix::Addr<A>], events: &[Event], messaging: Messaging) -> Duration
where
    A: Actor<Context = actix::Context<A>> + actix::Handler<Apply> + actix::Handler<ApplyBatch>,
{
    let by_partition = deliveries(events.to_vec());
    let start = Instant::now();
    let tasks: Vec<_> = by_partition
        .into_iter()
        .enumerate()
        .map(|(p, deliveries)| tokio::spawn(feed(actors[p].clone(), deliveries, messaging)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

fn label(messaging: Messaging) -> String {
    match messaging {
        Messaging::PerDelivery => "send().await per delivery".into(),
        Messaging::Batched(size) => format!("one message per {size} deliveries"),
    }
}

async fn actors_round(events: &[Event], messaging: Messaging) {
    let n = events.len();
    let arbiters: Vec<Arbiter> = (0..2).map(|_| Arbiter::new()).collect();
    let snapshots = SnapshotSettings {
        every: u64::MAX,
        interval: Duration::from_secs(3600),
        bucket: "unused".into(),
    };
    let mut actors = Vec::new();
    let mut keep = Vec::new();
    let items = std::sync::Arc::new(shopmesh_analytics::items::ItemGraph::default());
    for p in count().all() {
        let (tx, rx) = tokio::sync::watch::channel(None);
        keep.push(rx);
        let actor = PartitionActor::new(
            p,
            PartitionState::default(),
            None,
            AggregateSettings::default(),
            &snapshots,
            Clock::system(),
            1024,
            tx,
            items.clone(),
        );
        let arbiter = &arbiters[usize::from(p.index()) % arbiters.len()];
        actors.push(PartitionActor::start_in_arbiter(
            &arbiter.handle(),
            move |_| actor,
        ));
    }
    let elapsed = feed_all(&actors, events, messaging).await;
    let applied: u64 = futures::future::join_all(
        actors
            .iter()
            .map(|a| a.send(Inspect(Box::new(|v| v.state.applied)))),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .sum();
    assert_eq!(applied, n as u64);
    println!(
        "actors, every aggregate ({PARTITIONS} partitions on 2 arbiters, {}, {n} events): {:.0} events/s",
        label(messaging),
        n as f64 / elapsed.as_secs_f64()
    );
    for arbiter in arbiters {
        arbiter.stop();
    }
}

/// A partition actor whose whole state is one count per user.
#[derive(Default)]
struct KeyedCount {
    counts: FastMap<UserId, u64>,
    last_sequence: u64,
}

impl KeyedCount {
    fn apply(&mut self, delivery: &Delivery) {
        if delivery.stream_sequence > self.last_sequence {
            self.last_sequence = delivery.stream_sequence;
            if let Some(user) = delivery.event.meta.user_id {
                *self.counts.entry(user).or_default() += 1;
            }
        }
    }
}

impl Actor for KeyedCount {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

impl actix::Handler<Apply> for KeyedCount {
    type Result = ();
    fn handle(&mut self, msg: Apply, _: &mut Self::Context) {
        self.apply(&msg.delivery);
    }
}

impl actix::Handler<ApplyBatch> for KeyedCount {
    type Result = ();
    fn handle(&mut self, msg: ApplyBatch, _: &mut Self::Context) {
        for (delivery, _) in &msg.deliveries {
            self.apply(delivery);
        }
    }
}

struct Total;
impl actix::Message for Total {
    type Result = u64;
}
impl actix::Handler<Total> for KeyedCount {
    type Result = u64;
    fn handle(&mut self, _: Total, _: &mut Self::Context) -> u64 {
        self.counts.values().sum()
    }
}

async fn keyed_count_round(events: &[Event], messaging: Messaging) {
    let n = events.len();
    let arbiters: Vec<Arbiter> = (0..2).map(|_| Arbiter::new()).collect();
    let actors: Vec<_> = count()
        .all()
        .map(|p| {
            let arbiter = &arbiters[usize::from(p.index()) % arbiters.len()];
            KeyedCount::start_in_arbiter(&arbiter.handle(), |_| KeyedCount::default())
        })
        .collect();
    let elapsed = feed_all(&actors, events, messaging).await;
    let total: u64 = futures::future::join_all(actors.iter().map(|a| a.send(Total)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(total, n as u64);
    println!(
        "actors, keyed count per user ({PARTITIONS} partitions on 2 arbiters, {}, {n} events): {:.0} events/s",
        label(messaging),
        n as f64 / elapsed.as_secs_f64()
    );
    for arbiter in arbiters {
        arbiter.stop();
    }
}

fn app_settings(backbone: &TestBackbone, extra: &[(&str, &str)]) -> Settings {
    let mut pairs: Vec<(String, String)> = vec![
        ("NATS_URL".into(), backbone.server.url()),
        ("SHOPMESH_HTTP_PORT".into(), "0".into()),
        ("SHOPMESH_HTTP_WORKERS".into(), "1".into()),
        ("SHOPMESH_PARTITIONS".into(), PARTITIONS.to_string()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    // The service's own tunables from the bench's environment, so that a
    // variant is one variable away (`SHOPMESH_ANALYTICS_SNAPSHOT_EVERY=...
    // cargo bench ...`), as with `shopmesh bench`.
    pairs.extend(std::env::vars().filter(|(k, _)| k.starts_with("SHOPMESH_ANALYTICS_")));
    Settings::from_env(&Env::from_pairs(pairs)).unwrap()
}

fn publisher(backbone: &TestBackbone) -> EventPublisher {
    let mut streams = backbone.settings.streams.clone();
    streams.partitions = count();
    EventPublisher::new(
        backbone.client.clone(),
        &backbone.settings.publisher,
        &streams,
    )
}

async fn publish(publisher: &EventPublisher, events: &[Event]) {
    for chunk in events.chunks(1024) {
        let mut pending = Vec::with_capacity(chunk.len());
        for event in chunk {
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
    }
}

async fn handled(client: &reqwest::Client, address: &str) -> u64 {
    let stats: serde_json::Value = client
        .get(format!("{address}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["consumer"]["handled"].as_u64().unwrap()
}

/// Ours: the app consumes while the events are published; time until all
/// are handled (applied and acked).
async fn e2e_ours(events: &[Event]) -> Duration {
    let backbone = TestBackbone::start().await;
    let app = Application::build(app_settings(&backbone, &[]))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    let task = actix::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let publisher = publisher(&backbone);
    let start = Instant::now();
    publish(&publisher, events).await;
    // /stats asks NATS for every partition's consumer info: polled rarely so
    // that the polling does not compete with the work measured (20 ms is
    // well under 1% of a run).
    while handled(&client, &address).await < events.len() as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    handle.stop(true).await;
    task.await.unwrap().unwrap();
    elapsed
}

/// How the raw baseline stores and consumes. The service's layout is a
/// stream per partition with one unfiltered consumer each; the other raw
/// layouts keep every event in one stream (`shopmesh.events.>`, the byte
/// limit of all partition streams together). The e2e ratio is taken against
/// the faster of `One` and `StreamPerPartition` in the same round: one
/// consumer on one stream does the least work for the server (and
/// `shopmesh bench` found it the fastest plain code), the stream per
/// partition is the same layout as ours. The last two are measured by the
/// `raw-layouts` section only: what partition filters cost nats-server.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RawConsumers {
    /// One stream, one consumer for everything.
    One,
    /// One stream per partition (capturing that partition's subjects), one
    /// unfiltered consumer on each: the service's layout.
    StreamPerPartition,
    /// One stream, a consumer per partition filtered on
    /// `shopmesh.events.*.*.<partition>` (the service's layout before it
    /// moved to a stream per partition).
    PerPartition,
    /// One stream whose stored subjects are transformed to
    /// `shopmesh.events.<partition>`, one consumer with that literal filter
    /// per partition.
    LiteralPerPartition,
}

/// Raw: the same messages (subjects, headers, bodies) published with plain
/// async-nats JetStream, consumed by pull consumers that decode each message
/// and ack it.
async fn e2e_raw(events: &[Event], consumers_kind: RawConsumers) -> Duration {
    let backbone = TestBackbone::start().await;
    let publisher = publisher(&backbone);
    let prepared: Vec<_> = events
        .iter()
        .map(|e| publisher.prepare(e).unwrap())
        .collect();
    // The provisioned layout is a stream per partition; the single-stream
    // layouts replace it with one stream of the same settings.
    let streams = &backbone.settings.streams;
    let mut partition_streams = Vec::new();
    for (_, name) in streams.partition_streams() {
        partition_streams.push(backbone.js.get_stream(&name).await.unwrap());
    }
    let single = |mut config: jetstream::stream::Config| {
        config.name = streams.events_stream.clone();
        config.description = None;
        config.subjects = vec![shopmesh_shared::subjects::EVENTS_WILDCARD.into()];
        config.max_bytes = i64::try_from(streams.max_bytes).unwrap();
        config
    };
    let first = shopmesh_shared::nats::events_stream_config(streams, count().all().next().unwrap());
    let mut stream = partition_streams[0].clone();
    if consumers_kind != RawConsumers::StreamPerPartition {
        for (_, name) in streams.partition_streams() {
            backbone.js.delete_stream(&name).await.unwrap();
        }
        partition_streams.clear();
        let mut config = single(first);
        if consumers_kind == RawConsumers::LiteralPerPartition {
            config.subject_transform = Some(jetstream::stream::SubjectTransform {
                source: "shopmesh.events.*.*.*".into(),
                destination: "shopmesh.events.{{wildcard(3)}}".into(),
            });
        }
        stream = backbone.js.create_stream(config).await.unwrap();
    }
    let mut counts = vec![0usize; usize::from(PARTITIONS)];
    for e in events {
        counts[usize::from(partition_for(e.meta.user_id.as_ref(), count()).index())] += 1;
    }
    // (durable name, filter subject, messages it will see)
    let plan: Vec<(String, String, usize)> = match consumers_kind {
        RawConsumers::One => vec![("raw-all".into(), String::new(), events.len())],
        _ => count()
            .all()
            .map(|p| {
                let filter = match consumers_kind {
                    RawConsumers::PerPartition => shopmesh_shared::subjects::partition_filter(p),
                    RawConsumers::LiteralPerPartition => format!("shopmesh.events.{}", p.index()),
                    _ => String::new(),
                };
                (
                    format!("raw-{}", p.index()),
                    filter,
                    counts[usize::from(p.index())],
                )
            })
            .collect(),
    };
    let mut consumers = Vec::new();
    let mut per_partition = Vec::new();
    for (i, (durable, filter_subject, expected)) in plan.into_iter().enumerate() {
        if let Some(own) = partition_streams.get(i) {
            stream = own.clone();
        }
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(durable),
                filter_subject,
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 4096,
                ..Default::default()
            })
            .await
            .unwrap();
        consumers.push(consumer);
        per_partition.push(expected);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (consumer, expected) in consumers.into_iter().zip(per_partition) {
        tasks.push(tokio::spawn(async move {
            if expected == 0 {
                return;
            }
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(256)
                .messages()
                .await
                .unwrap();
            let mut seen = 0;
            while let Some(Ok(message)) = messages.next().await {
                let _ = headers::decode_message(message.headers.as_ref(), &message.payload);
                let _ = message.ack().await;
                seen += 1;
                if seen == expected {
                    break;
                }
            }
        }));
    }
    let js = backbone.js.clone();
    for chunk in prepared.chunks(1024) {
        let mut acks = Vec::with_capacity(chunk.len());
        for outbound in chunk {
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(outbound.body.clone())
                .headers(outbound.headers());
            acks.push(
                js.send_publish(outbound.subject.clone(), message)
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

async fn bench_e2e(n: usize) {
    let mut generator = Generator::new(10_000, 1_000);
    let events: Vec<Event> = (0..n).map(|_| generator.event()).collect();
    let mut ratios = Vec::new();
    for round in 0..3 {
        // Alternate who goes first: the machine is noisy.
        let raw_both = async || {
            let per_partition = e2e_raw(&events, RawConsumers::StreamPerPartition).await;
            let one = e2e_raw(&events, RawConsumers::One).await;
            (per_partition, one)
        };
        let ((raw_partitioned, raw_one), ours) = if round % 2 == 0 {
            let raw = raw_both().await;
            (raw, e2e_ours(&events).await)
        } else {
            let ours = e2e_ours(&events).await;
            (raw_both().await, ours)
        };
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        let raw = raw_partitioned.min(raw_one);
        let ratio = rate(ours) / rate(raw);
        ratios.push(ratio);
        println!(
            "e2e round {round} ({n} events): ours {:.0} events/s, raw {:.0} msgs/s \
             (stream per partition {:.0}, one stream and consumer {:.0}), ratio to the faster \
             {ratio:.2}",
            rate(ours),
            rate(raw),
            rate(raw_partitioned),
            rate(raw_one)
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("e2e ratio median: {:.2}", ratios[ratios.len() / 2]);
}

/// Which query a latency probe polls until its event shows.
#[derive(Clone, Copy, Debug)]
enum Visible {
    /// `GET /users/{id}/profile`: answered by the user's partition alone.
    InProfile,
    /// `GET /products/{id}/stats`: gathered from every partition, so it
    /// also waits behind the busiest actor's queue.
    InProductStats,
}

/// Publish -> visible: probes (views of one product by a new user) at
/// `probes_per_sec`, each timed from its publish until the `visible` query
/// shows it, while a background publisher keeps `background_per_sec` other
/// events flowing through the same stream and actors.
async fn bench_latency(
    samples: usize,
    probes_per_sec: u64,
    background_per_sec: u64,
    visible: Visible,
) {
    let backbone = TestBackbone::start().await;
    let app = Application::build(app_settings(&backbone, &[]))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    let task = actix::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let publisher = publisher(&backbone);
    let stop = tokio_util::sync::CancellationToken::new();
    let background = tokio::spawn(background_load(
        publisher.clone(),
        background_per_sec,
        stop.clone(),
    ));
    let product = ProductId::new_v7();
    let category = Category::parse("bench").unwrap();
    let broker = backbone.server.pid().expect("the bench's nats-server runs");
    let cpu_before = (cpu_seconds("self"), cpu_seconds(&broker.to_string()));
    let probes_started = Instant::now();
    let mut latencies = Vec::with_capacity(samples);
    let mut acked = Vec::with_capacity(samples);
    let mut late = 0;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / probes_per_sec));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 1..=samples as u64 {
        ticker.tick().await;
        let user = UserId::new_v7();
        let event = Event::new(
            EventMeta::new("bench", Some(user)),
            ProductViewed {
                product_id: product,
                category: category.clone(),
            },
        );
        let url = match visible {
            Visible::InProfile => format!("{address}/users/{user}/profile"),
            Visible::InProductStats => format!("{address}/products/{product}/stats"),
        };
        // Published when sent: the probe is looked for once its ack is in or
        // a millisecond has passed, whichever comes first, and the ack is
        // awaited alongside. (The ack and the delivery to the consumer both
        // follow the server's store; waiting for the ack before looking
        // would time the slower of the two, looking at once would spend the
        // first poll before the event can be there.)
        let start = Instant::now();
        let pending = publisher
            .send(publisher.prepare(&event).unwrap())
            .await
            .unwrap();
        let (acked_tx, acked_rx) = tokio::sync::oneshot::channel();
        let ack = async {
            pending.confirm().await.unwrap();
            let _ = acked_tx.send(());
            start.elapsed()
        };
        let look = async {
            let _ = tokio::time::timeout(Duration::from_millis(1), acked_rx).await;
            visible_after(&client, &url, visible, n, start).await
        };
        let (ack, elapsed) = tokio::join!(ack, look);
        acked.push(ack);
        late += usize::from(elapsed >= Duration::from_secs(5));
        latencies.push(elapsed);
    }
    let wall = probes_started.elapsed().as_secs_f64();
    let cores = |before: f64, after: f64| (after - before) / wall;
    let this_process = cores(cpu_before.0, cpu_seconds("self"));
    let nats_server = cores(cpu_before.1, cpu_seconds(&broker.to_string()));
    stop.cancel();
    let (published, seconds) = background.await.unwrap();
    let pct = |times: &mut Vec<Duration>, p: f64| {
        times.sort();
        times[((times.len() as f64 * p) as usize).min(times.len() - 1)]
    };
    println!(
        "latency publish -> visible ({visible:?}), {samples} probes at {probes_per_sec}/s \
         under {:.0} background events/s (asked {background_per_sec}): p50 {:?}, p99 {:?}, max {:?}, over 5 s: {late}; \
         the probe's own ack p50 {:?}, p99 {:?}; CPU meanwhile (cores of {}): \
         this process (publishers, analytics, polls) {this_process:.2}, nats-server {nats_server:.2}",
        published as f64 / seconds,
        pct(&mut latencies, 0.50),
        pct(&mut latencies, 0.99),
        pct(&mut latencies, 1.0),
        pct(&mut acked, 0.50),
        pct(&mut acked, 0.99),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    handle.stop(true).await;
    task.await.unwrap().unwrap();
}

/// CPU time (user + system, every thread) of process `pid` (`self`: this
/// one) so far, in seconds, from `/proc/<pid>/stat`, whose times are in
/// USER_HZ ticks, 100 per second in Linux's user ABI.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is the first, utime the 12th, stime the 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Polls `url` from `start` until the probe shows (the `n`th view of the
/// product for `InProductStats`); the time from `start`, at most 5 s (a
/// probe still invisible then is given up, and counted late by the caller).
async fn visible_after(
    client: &reqwest::Client,
    url: &str,
    visible: Visible,
    n: u64,
    start: Instant,
) -> Duration {
    while start.elapsed() < Duration::from_secs(5) {
        let response = client.get(url).send().await.unwrap();
        if response.status() == 200 {
            let body: serde_json::Value = response.json().await.unwrap();
            let shown = match visible {
                // The user is new: any profile is this probe's view.
                Visible::InProfile => true,
                Visible::InProductStats => body["all_time"]["views"].as_u64() >= Some(n),
            };
            if shown {
                break;
            }
        }
        // Back-to-back polls would themselves load the actors they wait
        // for (a hundred queries per probe once queues build); polling
        // every millisecond (tokio's timer resolution) bounds that, at
        // the cost of up to a millisecond of measured latency.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

/// Publishes shop-like events at `per_sec` (a burst every millisecond, acks
/// confirmed in groups) until stopped; returns how many and over how long.
async fn background_load(
    publisher: EventPublisher,
    per_sec: u64,
    stop: tokio_util::sync::CancellationToken,
) -> (u64, f64) {
    if per_sec == 0 {
        stop.cancelled().await;
        return (0, 1.0);
    }
    let mut generator = Generator::new(10_000, 1_000);
    let per_tick = per_sec.div_ceil(1000);
    let mut ticker =
        tokio::time::interval(Duration::from_nanos(1_000_000 * per_tick * 1000 / per_sec));
    let start = Instant::now();
    let mut published = 0u64;
    while !stop.is_cancelled() {
        let mut pending = Vec::new();
        for _ in 0..20 {
            ticker.tick().await;
            for _ in 0..per_tick {
                let outbound = publisher.prepare(&generator.event()).unwrap();
                pending.push(publisher.send(outbound).await.unwrap());
            }
        }
        for p in pending {
            p.confirm().await.unwrap();
            published += 1;
        }
    }
    (published, start.elapsed().as_secs_f64())
}

/// The recommendation pipeline alone (no HTTP, no actors): the same reads
/// over the partition states and their product-keyed view, one core.
fn bench_recommend_in_process(history: usize, requests: usize) {
    let mut generator = Generator::new(10_000, 1_000);
    let mut events = generator.catalogue();
    events.extend((0..history).map(|_| generator.event()));
    let config = AggregateSettings::default();
    let items = shopmesh_analytics::items::ItemGraph::default();
    let mut states: Vec<PartitionState> =
        (0..PARTITIONS).map(|_| PartitionState::default()).collect();
    for (i, event) in events.iter().enumerate() {
        let p = partition_for(event.meta.user_id.as_ref(), count());
        states[usize::from(p.index())].apply_with(i as u64 + 1, event, &config, &mut &items);
    }
    let shards = shopmesh_analytics::eval::local::LocalShards {
        states: states.iter().collect(),
        items: &items,
        settings: Default::default(),
        now_ms: shopmesh_shared::events::Timestamp::now().as_millis(),
    };
    let mut latencies = Vec::with_capacity(requests);
    for n in 0..requests {
        let user = generator.users[n * 7919 % generator.users.len()];
        let request = shopmesh_analytics::recommend::pipeline::Request {
            k: 10,
            require_catalogue: true,
            ..Default::default()
        };
        let start = Instant::now();
        let answer = futures::executor::block_on(shopmesh_analytics::recommend::recommend(
            &shards,
            user,
            request,
            &shards.settings,
        ))
        .unwrap();
        latencies.push(start.elapsed());
        assert_eq!(answer.len(), 10);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "recommend in process (k=10, {history} events, 1000 products): p50 {:?}, p99 {:?}",
        pct(0.5),
        pct(0.99)
    );
}

/// `GET /recommendations/{user}?k=10` latency at a fixed offered rate, with
/// a populated state (catalogue, `history` shop events) and
/// `background_per_sec` events still flowing.
async fn bench_recommend(history: usize, requests: usize, per_sec: u64, background_per_sec: u64) {
    let backbone = TestBackbone::start().await;
    // Two HTTP workers (one per core, the service's default): requests are
    // what this measures.
    let app = Application::build(app_settings(&backbone, &[("SHOPMESH_HTTP_WORKERS", "2")]))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    let task = actix::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let publisher = publisher(&backbone);
    let mut generator = Generator::new(10_000, 1_000);
    let mut events = generator.catalogue();
    events.extend((0..history).map(|_| generator.event()));
    publish(&publisher, &events).await;
    while handled(&client, &address).await < events.len() as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let background = tokio::spawn(background_load(
        publisher.clone(),
        background_per_sec,
        stop.clone(),
    ));
    let users = generator.users.clone();
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_sec));
    // Each request is its own task, so it runs while the next ones are
    // offered (an open loop: a slow answer does not slow the offered rate).
    let mut pending = Vec::with_capacity(requests);
    for n in 0..requests {
        ticker.tick().await;
        let url = format!(
            "{address}/recommendations/{}?k=10",
            users[n * 7919 % users.len()]
        );
        let client = client.clone();
        pending.push(tokio::spawn(async move {
            let start = Instant::now();
            let body: serde_json::Value =
                client.get(url).send().await.unwrap().json().await.unwrap();
            (
                start.elapsed(),
                body["items"].as_array().map_or(0, Vec::len),
            )
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut empty = 0;
    for task in pending {
        let (latency, items) = task.await.unwrap();
        latencies.push(latency);
        empty += usize::from(items == 0);
    }
    stop.cancel();
    let (published, seconds) = background.await.unwrap();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "GET /recommendations/{{user}}?k=10, {requests} requests at {per_sec}/s after {history} events, \
         under {:.0} background events/s: p50 {:?}, p99 {:?}, max {:?}, empty answers {empty}",
        published as f64 / seconds,
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    handle.stop(true).await;
    task.await.unwrap().unwrap();
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Each configuration runs in its own process: freed memory of one would
/// hide the growth of the next.
fn bench_memory() {
    for section in ["memory-100k-users", "memory-1m-users"] {
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .arg(section)
            .status()
            .expect("runs itself");
        assert!(status.success());
    }
}

fn bench_memory_of(users: usize, interactions: usize) {
    let config = AggregateSettings::default();
    {
        let mut generator = Generator::new(users, 10_000);
        let before = resident_bytes();
        let mut states: Vec<PartitionState> =
            (0..PARTITIONS).map(|_| PartitionState::default()).collect();
        for i in 0..interactions {
            let event = generator.event();
            let p = partition_for(event.meta.user_id.as_ref(), count());
            states[usize::from(p.index())].apply(i as u64 + 1, &event, &config);
        }
        let grown = resident_bytes().saturating_sub(before);
        let snapshot: usize = states
            .iter()
            .map(|s| shopmesh_shared::codec::encode_value(s).unwrap().len())
            .sum();
        let touched: usize = states.iter().map(|s| s.users.len()).sum();
        println!(
            "memory: {touched} users, {interactions} interactions, 10000 products, {PARTITIONS} partitions: resident +{:.0} MiB ({:.0} B/user, {:.0} B/interaction); snapshots {:.0} MiB",
            grown as f64 / (1 << 20) as f64,
            grown as f64 / touched as f64,
            grown as f64 / interactions as f64,
            snapshot as f64 / (1 << 20) as f64
        );
        drop(states);
    }
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if run("apply") {
        bench_apply(100_000, 10_000, 1_000_000);
    }
    // A state that fits in the caches: every user's window full, every
    // product's list at its bound.
    if filter.as_deref() == Some("apply-small") {
        bench_apply(1_000, 1_000, 1_000_000);
    }
    match filter.as_deref() {
        Some("memory-100k-users") => return bench_memory_of(100_000, 1_000_000),
        Some("memory-1m-users") => return bench_memory_of(1_000_000, 1_000_000),
        _ => {}
    }
    // Raw publish + consume with each stream layout, same messages: why the
    // service keeps a stream per partition.
    if filter.as_deref() == Some("raw-layouts") {
        return shopmesh_analytics::run_system(|| async {
            let mut generator = Generator::new(10_000, 1_000);
            let events: Vec<Event> = (0..200_000).map(|_| generator.event()).collect();
            for round in 0..3 {
                for kind in [
                    RawConsumers::One,
                    RawConsumers::StreamPerPartition,
                    RawConsumers::PerPartition,
                    RawConsumers::LiteralPerPartition,
                ] {
                    let took = e2e_raw(&events, kind).await;
                    println!(
                        "raw round {round} {kind:?}: {:.0} msgs/s",
                        events.len() as f64 / took.as_secs_f64()
                    );
                }
            }
        });
    }
    if run("recommend-in-process") {
        bench_recommend_in_process(200_000, 2_000);
    }
    if run("memory") {
        bench_memory();
    }
    shopmesh_analytics::run_system(|| async {
        if run("actors") {
            bench_actors(2_000_000).await;
        }
        if filter.as_deref() == Some("e2e-traced") {
            // Tracing's cost: the same e2e comparison with every span
            // exported to an in-process OTLP receiver, sampled as the
            // standard variables say (run once with OTEL_TRACES_SAMPLER_ARG=1
            // and once with 0.01, beside an untraced `e2e` run).
            let receiver = shopmesh_shared::testkit::OtlpReceiver::start().await;
            let mut settings = shopmesh_shared::telemetry::TelemetrySettings::from_env(
                &Env::from_process(),
                "shopmesh-analytics-bench",
                "0",
            )
            .unwrap();
            settings.log_filter = "warn".into();
            settings.export = shopmesh_shared::telemetry::SpanExport::Otlp {
                endpoint: receiver.endpoint.clone(),
                protocol: shopmesh_shared::telemetry::OtlpProtocol::HttpProtobuf,
            };
            let telemetry = shopmesh_shared::telemetry::init(&settings).unwrap();
            println!(
                "traced: OTEL_TRACES_SAMPLER={:?} OTEL_TRACES_SAMPLER_ARG={:?}",
                std::env::var("OTEL_TRACES_SAMPLER").ok(),
                std::env::var("OTEL_TRACES_SAMPLER_ARG").ok()
            );
            bench_e2e(200_000).await;
            telemetry.shutdown();
            println!("spans received: {}", receiver.spans().len());
        } else if run("e2e") {
            bench_e2e(200_000).await;
        }
        if run("recommend-http") {
            bench_recommend(200_000, 4_000, 200, 5_000).await;
            bench_recommend(200_000, 5_000, 500, 5_000).await;
        }
        if run("latency") {
            for visible in [Visible::InProfile, Visible::InProductStats] {
                bench_latency(500, 100, 0, visible).await;
                bench_latency(1_000, 100, 20_000, visible).await;
            }
        }
    });
    let _ = Partition::new(0, count());
}
