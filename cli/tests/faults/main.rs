//! Fault tests with real processes (`cargo build --workspace --bins` first):
//! the service binaries, real nats-servers and Postgres, and the failures
//! operators meet. Each test waits on conditions with deadlines, never on
//! fixed sleeps, and compares what survives with a ground truth read back
//! from the stream or the databases:
//!
//! - `analytics_crash`: kill -9 of the analytics process under a shopping
//!   load; after the restart every aggregate equals a recomputation.
//! - `nats_restart`: the nats-server killed and started again on the same
//!   port and store while the domain services work; no business event lost
//!   or doubled, behaviour-event losses counted, recovery without restarts.
//! - `nats_cluster`: kill -9 of the events stream's leader in a three-node
//!   JetStream cluster under load; no acknowledged publish lost, consumers go on.
//! - `postgres_outage`: the order service's Postgres cut off and restored
//!   behind a TCP proxy; 503 problems, no partial order, recovery in place.
//! - `stock_release`: a checkout whose reservation went unanswered; the
//!   stock comes back once the product service answers, across a kill -9 of
//!   the order service.

mod pg_proxy;
mod processes;
mod recompute;
mod shop;
mod stream;
mod tables;

mod analytics_crash;
mod nats_cluster;
mod nats_restart;
mod postgres_outage;
mod stock_release;
