//! Black-box tests of the analytics service against a real nats-server.

mod consumption;
mod helpers;
mod metrics;
mod queries;
mod recommendations;
mod restart;
mod traces;
mod two_instances;
