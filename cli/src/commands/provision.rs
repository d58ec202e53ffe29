//! `shopmesh provision`: create or update the streams (the events stream of
//! every partition and the dead-letter stream), idempotently. Services do
//! the same at start; this is for operators and for deployment jobs.

use anyhow::Context;
use shopmesh_shared::nats::{connect, jetstream_context, provision_streams};
use shopmesh_shared::settings::{BackboneSettings, Env};

#[derive(clap::Args)]
pub struct Args {
    /// Print the resulting stream configurations as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let settings = BackboneSettings::from_env(env)?;
    let client = connect(&settings.nats, "shopmesh-cli").await?;
    let js = jetstream_context(client, &settings.publisher);
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
