//! `shopmesh partition USER_ID`: which partition a user's events land in, and
//! the subjects to subscribe to for them.

use shopmesh_shared::events::{EventType, UserId};
use shopmesh_shared::settings::{BackboneSettings, Env};
use shopmesh_shared::subjects::{event_subject, partition_filter, partition_for};

#[derive(clap::Args)]
pub struct Args {
    /// The user's id (a UUID).
    user_id: String,
}

pub fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let settings = BackboneSettings::from_env(env)?;
    let user = UserId::parse(&args.user_id)?;
    let count = settings.streams.partitions;
    let partition = partition_for(Some(&user), count);
    println!("user {user} -> partition {partition} of {}", count.get());
    println!(
        "all of this partition's events: {}",
        partition_filter(partition)
    );
    println!(
        "this user's views, for example:  {}",
        event_subject(EventType::ProductViewed, partition)
    );
    Ok(())
}
