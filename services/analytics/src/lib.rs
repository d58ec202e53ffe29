//! The analytics service: every event of the mesh is applied, within
//! milliseconds, by the actor owning its partition (users' aggregates,
//! product counters and sliding windows, trending, funnel, co-occurrence),
//! with snapshots so that state survives crashes without loss or double
//! counting, and REST reads that gather the partitions' partial answers.

#![forbid(unsafe_code)]

pub mod actor;
pub mod clock;
pub mod error;
pub mod eval;
pub mod gather;
pub mod hash;
pub mod items;
pub mod recommend;
pub mod router;
pub mod routes;
pub mod rpc;
pub mod settings;
pub mod snapshot;
pub mod startup;
pub mod state;
pub mod sums;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod window;

/// The service's name in telemetry and NATS connection names.
pub const NAME: &str = "analytics";

/// Runs `make()`'s future inside an actix `System` on a multi-thread tokio
/// runtime: what the binary does, and what tests and benchmarks reuse.
pub fn run_system<F, Fut>(make: F) -> Fut::Output
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future,
{
    actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
    .block_on(make())
}
