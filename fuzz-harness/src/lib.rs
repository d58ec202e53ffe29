//! The bodies of shopmesh's fuzz targets. Each feeds raw outside input
//! through the same functions the receiving service runs on it (its JSON
//! extractor, its request types' `validate`, its query parsers, the event
//! decoder), then checks what must hold for whatever got through: an
//! accepted value re-validates to itself, what decodes encodes and decodes
//! back the same, a refusal is the client's fault (400) and names a field
//! the request has. A panic is a finding.
//!
//! The cargo-fuzz crate in `fuzz/` runs these under libFuzzer (nightly
//! flags); `tests/corpus.rs` replays the committed corpus through them on
//! stable, so the corpus stays valid and CI runs the harness.

#![forbid(unsafe_code)]

mod analytics;
mod event;
mod invariants;
mod nats_message;
mod order;
mod product;
mod user;

pub use analytics::{analytics_query, analytics_rpc};
pub use event::event_message;
pub use nats_message::NatsMessage;
pub use order::{order_cart_add, order_rpc_replies};
pub use product::{
    product_create, product_list_query, product_rate, product_stock_rpc, product_update,
};
pub use user::{user_login, user_register};

/// What a target's service did with an input, for the corpus replay test
/// (seeds named `ok-*` must be accepted, `bad-*` refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It got through parsing and validation.
    Accepted,
    Refused,
}

impl Outcome {
    fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() {
            Self::Accepted
        } else {
            Self::Refused
        }
    }
}

/// One fuzz target: its name (its file under `fuzz/fuzz_targets/` and its
/// folder under `fuzz/corpus/`) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> Outcome,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "event_message",
        run: event_message,
    },
    Target {
        name: "user_register",
        run: user_register,
    },
    Target {
        name: "user_login",
        run: user_login,
    },
    Target {
        name: "product_create",
        run: product_create,
    },
    Target {
        name: "product_update",
        run: product_update,
    },
    Target {
        name: "product_rate",
        run: product_rate,
    },
    Target {
        name: "product_list_query",
        run: product_list_query,
    },
    Target {
        name: "product_stock_rpc",
        run: product_stock_rpc,
    },
    Target {
        name: "order_cart_add",
        run: order_cart_add,
    },
    Target {
        name: "order_rpc_replies",
        run: order_rpc_replies,
    },
    Target {
        name: "analytics_query",
        run: analytics_query,
    },
    Target {
        name: "analytics_rpc",
        run: analytics_rpc,
    },
];
