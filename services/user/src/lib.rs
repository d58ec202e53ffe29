//! The user service: accounts (registration), sessions (login issuing signed
//! tokens every service verifies on its own) and the caller's own profile.
//!
//! `startup` wires the pieces; `routes` hold the handlers; `domain` the
//! validated newtypes; `storage` the SQL; `password` the argon2id hashing;
//! `error` the one mapping from failures to problem bodies.

#![forbid(unsafe_code)]

/// The producer name on events and the service name in NATS and traces.
pub const SERVICE: &str = "user";

pub mod domain;
pub mod error;
pub mod password;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod storage;
