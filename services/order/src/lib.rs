//! The order service: shopping carts, checkout and orders.
//!
//! Checkout reserves stock through the product service's NATS endpoints
//! (`shopmesh_shared::rpc`), then writes the order, its lines and the
//! `order.placed` event in one transaction (transactional outbox). Cart changes
//! are behaviour events, published without ever slowing the request.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod domain;
pub mod error;
pub mod releaser;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod storage;

/// The service's name: in events, NATS connection names and telemetry.
pub const SERVICE: &str = "order";
