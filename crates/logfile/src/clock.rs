//! The clock, injected so that midnight, clock steps and year-long jumps can
//! be tested in milliseconds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One reading of the clock: wall time (UTC, may jump) and a monotonic time
/// (never jumps) taken together. Comparing the two is how capture notices
/// that the wall clock was stepped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch, UTC.
    pub wall_ms: i64,
    /// Milliseconds on a monotonic clock with an arbitrary origin.
    pub mono_ms: i64,
}

/// A source of [`Stamp`]s.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Stamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Stamp {
        let wall_ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        };
        Stamp { wall_ms, mono_ms: self.origin.elapsed().as_millis() as i64 }
    }
}

/// A clock moved by hand, for tests. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Stamp>>);

impl ManualClock {
    /// Starts at `wall_ms` (epoch milliseconds) with monotonic time 0.
    pub fn new(wall_ms: i64) -> Self {
        Self(Arc::new(Mutex::new(Stamp { wall_ms, mono_ms: 0 })))
    }

    /// Time passes: both clocks move forward by `ms`.
    pub fn advance(&self, ms: i64) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.wall_ms += ms;
        s.mono_ms += ms;
    }

    /// The wall clock is stepped by `ms` (negative: backwards); monotonic time does not move.
    pub fn step(&self, ms: i64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).wall_ms += ms;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Stamp {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
