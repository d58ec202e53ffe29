//! `shopmesh eval`: the recommender measured on a MovieLens file under the
//! protocol of the engineering guide (section 4), by replaying the ratings
//! through the same `PartitionState::apply` and the same recommendation
//! pipeline the service runs; no separate batch model.
//!
//! - `dataset`: reading `u.data` or `ratings.csv`;
//! - `protocol`: the offline (per-user 80/20 by time) and prequential
//!   (replay, ask before applying) protocols, with the popularity baseline;
//! - `metrics`: HR@10, NDCG@10, Recall@10;
//! - `local`: the pipeline's `Shards` over one in-memory state.

pub mod dataset;
pub mod local;
pub mod metrics;
pub mod protocol;

pub use dataset::{Dataset, DatasetError, Rating};
pub use metrics::Metrics;
pub use protocol::{EvalReport, Mode, evaluate};
