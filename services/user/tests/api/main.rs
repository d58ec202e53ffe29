//! Black-box tests of the user service: a real nats-server per test, every
//! database kind `test_databases()` returns, requests over HTTP.

mod health;
mod helpers;
mod me;
mod registration;
mod sessions;
mod shutdown;
