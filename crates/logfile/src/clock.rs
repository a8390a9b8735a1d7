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

/// The environment variable naming a clock-offset file (see [`OffsetClock`]).
pub const CLOCK_FILE_ENV: &str = "BLACKBOX_CLOCK_FILE";

/// The real clock shifted by an offset read from a file, so that tests and
/// soak runs of the real binary can put it just before midnight or step it
/// backwards. The file holds one signed integer: milliseconds added to the
/// system's wall time. It is re-read when [`OffsetClock::REREAD_MS`] of
/// monotonic time have passed since the last read; a file that is missing
/// or unreadable keeps the last offset. Monotonic time is never shifted.
#[derive(Debug)]
pub struct OffsetClock {
    system: SystemClock,
    path: std::path::PathBuf,
    /// The offset in force and the monotonic time it was read at.
    state: Mutex<(i64, Option<i64>)>,
}

impl OffsetClock {
    pub const REREAD_MS: i64 = 20;

    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { system: SystemClock::new(), path: path.into(), state: Mutex::new((0, None)) }
    }

    /// The clock the binary uses: shifted when `BLACKBOX_CLOCK_FILE` is set, else the system clock.
    pub fn from_env() -> Arc<dyn Clock> {
        match std::env::var_os(CLOCK_FILE_ENV) {
            Some(path) if !path.is_empty() => Arc::new(OffsetClock::new(path)),
            _ => Arc::new(SystemClock::new()),
        }
    }

    fn read(&self) -> Option<i64> {
        std::fs::read_to_string(&self.path).ok()?.trim().parse().ok()
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Stamp {
        let real = self.system.now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.1.is_none_or(|at| real.mono_ms - at >= Self::REREAD_MS) {
            if let Some(offset) = self.read() {
                state.0 = offset;
            }
            state.1 = Some(real.mono_ms);
        }
        Stamp { wall_ms: real.wall_ms + state.0, mono_ms: real.mono_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_follows_its_file_and_keeps_the_last_good_offset() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offset");
        std::fs::write(&file, "-86400000\n").unwrap();
        let clock = OffsetClock::new(&file);
        let sys = SystemClock::new();
        let before = sys.now().wall_ms;
        let shifted = clock.now().wall_ms;
        let after = sys.now().wall_ms;
        assert!(shifted >= before - 86_400_000 && shifted <= after - 86_400_000, "{shifted} not a day before {before}..{after}");
        // A garbled file keeps the offset in force.
        std::fs::write(&file, "soon").unwrap();
        clock.state.lock().unwrap().1 = None;
        assert!(clock.now().wall_ms <= sys.now().wall_ms - 86_400_000);
        // A new offset is taken up at the next re-read.
        std::fs::write(&file, "0").unwrap();
        clock.state.lock().unwrap().1 = None;
        let t = clock.now().wall_ms;
        assert!((t - sys.now().wall_ms).abs() < 1000);
    }
}
