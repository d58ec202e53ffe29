//! The product service: the catalogue over HTTP (create, update, list, view,
//! rate) and stock over NATS request-reply (lookup, reserve, release).
//!
//! Catalogue changes leave through the transactional outbox; views, searches
//! and ratings are behaviour events that never slow a request down.

#![forbid(unsafe_code)]

pub mod cache;
pub mod catalogue;
pub mod domain;
pub mod error;
pub mod inventory;
pub mod repository;
pub mod routes;
pub mod rpc;
pub mod seed;
pub mod settings;
pub mod shared_reads;
pub mod startup;
pub mod state;

/// The service's name: producer of its events, its NATS client name and the
/// SQLite file name.
pub const NAME: &str = "product";
