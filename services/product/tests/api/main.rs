//! Black-box tests of the product service: the real binary's library against
//! a real nats-server and every test database (SQLite, and Postgres when
//! `TEST_POSTGRES_URL` is set).

mod helpers;
mod http;
mod products_cache;
mod products_create;
mod products_get;
mod products_list;
mod products_update;
mod ratings;
mod rpc;
