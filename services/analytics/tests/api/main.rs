//! Black-box tests of the analytics service against a real nats-server.

mod consumption;
mod helpers;
mod metrics;
mod queries;
mod recommendations;
mod restart;
mod snapshot_bucket;
mod traces;
mod two_instances;
