//! `shopmesh tail SUBJECT`: print the events on a subject pattern as JSON
//! lines with their headers, for people who subscribe to our subjects.
//!
//! Live by default (a plain subscription: what is published from now on);
//! `--history` reads the events streams from their start, through an
//! ordered consumer per partition's stream filtered on the part of the
//! pattern that stream holds, then keeps following. One partition's events
//! (so one user's) come in the order they were stored; partitions
//! interleave.

use anyhow::{Context, bail};
use async_nats::HeaderMap;
use futures::StreamExt;
use serde_json::{Value, json};
use shopmesh_shared::events::json::to_json;
use shopmesh_shared::nats::headers::{self as h, decode_message};
use shopmesh_shared::nats::{connect, jetstream_context};
use shopmesh_shared::settings::{BackboneSettings, Env};
use shopmesh_shared::subjects::{partition_filter, subject_intersection};
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// A subject or wildcard pattern, e.g. `shopmesh.events.order.>`.
    #[arg(default_value = "shopmesh.events.>")]
    subject: String,
    /// Start from the beginning of the events streams instead of now.
    #[arg(long)]
    history: bool,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<usize>,
}

/// One message as a JSON line: subject, the headers people filter on, and
/// the decoded event (or why it could not be decoded).
fn line(subject: &str, headers: Option<&HeaderMap>, payload: &[u8]) -> Value {
    let header = |name: &str| {
        headers
            .and_then(|hs| hs.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let mut value = json!({
        "subject": subject,
        "headers": {
            "type": header(h::EVENT_TYPE),
            "id": header(h::MESSAGE_ID),
            "traceparent": header(h::TRACEPARENT),
            "schema_version": header(h::SCHEMA_VERSION),
        },
    });
    match decode_message(headers, payload) {
        Ok(event) => value["event"] = to_json(&event),
        Err(error) => value["error"] = json!(error.to_string()),
    }
    value
}

pub async fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let settings = BackboneSettings::from_env(env)?;
    let client = connect(&settings.nats, "shopmesh-tail").await?;
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0usize;
    let mut print = |value: Value| -> anyhow::Result<bool> {
        writeln!(stdout, "{value}")?;
        stdout.flush()?;
        printed += 1;
        Ok(args.count.is_some_and(|n| printed >= n))
    };
    if args.history {
        let js = jetstream_context(client, &settings.publisher);
        let mut partitions = Vec::new();
        for (partition, name) in settings.streams.partition_streams() {
            let Some(filter_subject) =
                subject_intersection(&args.subject, &partition_filter(partition))
            else {
                continue;
            };
            let stream = js
                .get_stream(&name)
                .await
                .with_context(|| format!("stream {name}"))?;
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                    filter_subject,
                    ..Default::default()
                })
                .await
                .with_context(|| format!("an ordered consumer on {name}"))?;
            partitions.push(consumer.messages().await?);
        }
        if partitions.is_empty() {
            bail!(
                "no events stream holds {}: --history reads shopmesh.events.<domain>.<action>.<partition>",
                args.subject
            );
        }
        let mut messages = futures::stream::select_all(partitions);
        while let Some(message) = messages.next().await {
            let message = message?;
            let value = line(&message.subject, message.headers.as_ref(), &message.payload);
            if print(value)? {
                break;
            }
        }
    } else {
        let mut subscription = client.subscribe(args.subject.clone()).await?;
        while let Some(message) = subscription.next().await {
            let value = line(&message.subject, message.headers.as_ref(), &message.payload);
            if print(value)? {
                break;
            }
        }
    }
    Ok(())
}
