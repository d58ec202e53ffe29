//! Black-box tests of the order service: real NATS, real databases. Checkout
//! against the real product service is tested across services in
//! `cli/tests/`, where both services run.

mod cart;
mod health;
mod helpers;
mod orders;
