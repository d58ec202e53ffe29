//! shopmesh's common library: the event model and its codec, the subject
//! hierarchy, the NATS JetStream backbone (publisher, consumer runner, stream
//! provisioning), telemetry and typed settings. It knows no service.
//!
//! With the `testkit` feature it also offers the test harness every crate uses:
//! a real nats-server per test and fresh databases.

#![forbid(unsafe_code)]

pub mod auth;
pub mod behaviour;
pub mod codec;
pub mod db;
pub mod db_outage;
pub mod db_span;
pub mod db_writes;
pub mod events;
pub mod http;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod rpc;
pub mod service;
pub mod settings;
pub mod subjects;
pub mod telemetry;

#[cfg(feature = "testkit")]
pub mod testkit;
