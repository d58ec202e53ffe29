//! `shopmesh provision`: create or update the streams (the events stream of
//! every partition and the dead-letter stream), idempotently. Services do
//! the same at start; this is for operators and for deployment jobs.

use anyhow::{Context, bail};
use async_nats::jetstream;
use futures::TryStreamExt;
use shopmesh_shared::nats::{connect, jetstream_context, provision_streams};
use shopmesh_shared::settings::{BackboneSettings, Env, StreamSettings};
use shopmesh_shared::subjects::EVENTS_WILDCARD;

#[derive(clap::Args)]
pub struct Args {
    /// Print the resulting stream configurations as JSON.
    #[arg(long)]
    json: bool,
    /// First delete the single events stream of earlier versions
    /// (`SHOPMESH_STREAM`, every partition in one stream), once every
    /// consumer on it has consumed and acknowledged all of it; refused, with
    /// what is left, before that.
    #[arg(long)]
    retire_single_stream: bool,
}

pub async fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let settings = BackboneSettings::from_env(env)?;
    let client = connect(&settings.nats, "shopmesh-cli").await?;
    let js = jetstream_context(client, &settings.publisher);
    if args.retire_single_stream {
        retire_single_stream(&js, &settings.streams).await?;
    }
    let streams = provision_streams(&js, &settings.streams)
        .await
        .context("provisioning streams")?;
    if args.json {
        let report = serde_json::json!({
            "events": streams.events.iter().map(stream_summary).collect::<Vec<_>>(),
            "dead_letter": stream_summary(&streams.dead_letter),
        });
        println!("{report}");
    } else {
        for info in streams.events.iter().chain([&streams.dead_letter]) {
            let c = &info.config;
            println!(
                "{}: subjects {:?}, {} messages, max age {}s, max bytes {}, duplicate window {}s, replicas {}",
                c.name,
                c.subjects,
                info.state.messages,
                c.max_age.as_secs(),
                c.max_bytes,
                c.duplicate_window.as_secs(),
                c.num_replicas
            );
        }
    }
    Ok(())
}

fn stream_summary(info: &async_nats::jetstream::stream::Info) -> serde_json::Value {
    let c = &info.config;
    serde_json::json!({
        "name": c.name,
        "subjects": c.subjects,
        "messages": info.state.messages,
        "max_age_seconds": c.max_age.as_secs(),
        "max_bytes": c.max_bytes,
        "duplicate_window_seconds": c.duplicate_window.as_secs(),
        "replicas": c.num_replicas,
        "storage": format!("{:?}", c.storage).to_lowercase(),
    })
}

/// Deletes the single events stream of earlier versions when nothing on it
/// is still to be consumed. Its name is the prefix of the partition streams
/// (`SHOPMESH_EVENTS`); a stream of that name that does not hold every
/// event subject is someone else's and is left alone.
async fn retire_single_stream(
    js: &jetstream::Context,
    streams: &StreamSettings,
) -> anyhow::Result<()> {
    let name = &streams.events_stream;
    let Ok(mut stream) = js.get_stream(name).await else {
        eprintln!("no single events stream {name} to retire");
        return Ok(());
    };
    let info = stream.info().await?.clone();
    if !info.config.subjects.iter().any(|s| s == EVENTS_WILDCARD) {
        bail!(
            "stream {name} does not hold {EVENTS_WILDCARD}: not the single events stream of an \
             earlier shopmesh, so it is left alone"
        );
    }
    let consumers: Vec<_> = stream
        .consumers()
        .try_collect()
        .await
        .with_context(|| format!("listing the consumers of {name}"))?;
    let unfinished: Vec<String> = consumers
        .iter()
        .filter(|c| c.num_pending > 0 || c.num_ack_pending > 0)
        .map(|c| {
            format!(
                "{} ({} to deliver, {} unacknowledged)",
                c.name, c.num_pending, c.num_ack_pending
            )
        })
        .collect();
    if !unfinished.is_empty() {
        bail!(
            "{name} still has events its consumers have not finished: {}; let them consume it \
             to the end (analytics' /stats shows each partition's lag) and run this again",
            unfinished.join(", ")
        );
    }
    js.delete_stream(name)
        .await
        .with_context(|| format!("deleting {name}"))?;
    eprintln!(
        "retired {name}: {} messages, {} consumers, all consumed",
        info.state.messages,
        consumers.len()
    );
    Ok(())
}
