//! A coarse clock for request deadlines.
//!
//! Every request has a deadline, but reading the system clock and arming a
//! timer per request cost the load generator about a tenth of its time at
//! half a million requests a second. Deadlines are seconds long, so a clock
//! that advances in steps of [`TICK`] is precise enough: each connection's
//! sweeper advances it (and fails requests whose deadline passed), and code
//! that waits without a connection advances it itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often connections look for requests past their deadline.
pub const TICK: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct CoarseClock {
    epoch: Instant,
    /// Milliseconds since `epoch` at the last tick.
    now_ms: AtomicU64,
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            now_ms: AtomicU64::new(0),
        }
    }
}

impl CoarseClock {
    /// Reads the system clock and advances to it; returns the new time.
    pub fn tick(&self) -> u64 {
        let now = self.epoch.elapsed().as_millis() as u64;
        // fetch_max: ticks from several connections never move it back.
        self.now_ms.fetch_max(now, Ordering::Relaxed).max(now)
    }

    /// Milliseconds since the clock started, as of the last tick.
    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// The time `after` from the last tick, in this clock's milliseconds.
    pub fn deadline(&self, after: Duration) -> u64 {
        self.now_ms()
            .saturating_add(after.as_millis().min(u64::MAX as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_only_when_ticked_and_never_backwards() {
        let c = CoarseClock::default();
        assert_eq!(c.now_ms(), 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.now_ms(), 0, "reads do not advance the clock");
        let t = c.tick();
        assert!(t >= 20, "tick reads the real clock: {t}");
        assert_eq!(c.now_ms(), t);
        c.now_ms.store(t + 1_000, Ordering::Relaxed);
        assert_eq!(c.tick(), t + 1_000, "a later tick from elsewhere wins");
        assert_eq!(c.deadline(Duration::from_secs(2)), t + 3_000);
        assert_eq!(c.deadline(Duration::MAX), u64::MAX);
    }
}
