//! The service's notion of "now" in Unix milliseconds, for sliding windows.
//!
//! It is anchored once to the wall clock and then advances with tokio's
//! monotonic clock, so tests can pause and advance time
//! (`tokio::time::pause()/advance()`) instead of sleeping.

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    origin_ms: i64,
}

impl Clock {
    /// A clock reading the wall clock now and advancing with tokio time.
    pub fn system() -> Self {
        Self::starting_at(shopmesh_shared::events::Timestamp::now().as_millis())
    }

    /// A clock that reads `origin_ms` now.
    pub fn starting_at(origin_ms: i64) -> Self {
        Self {
            origin: Instant::now(),
            origin_ms,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.origin_ms + self.origin.elapsed().as_millis() as i64
    }
}
