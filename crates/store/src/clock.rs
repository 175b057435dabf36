//! Command times: the wall clock, kept from going backward. A node that orders writes (a single
//! node, or a Raft leader) reads this clock for each command it stamps.
//!
//! Stepping the wall clock back (NTP, an operator, a VM restored) must not bring expired keys
//! back nor stop time until the clock has caught up again; stepping it forward is taken as it
//! is (an expiry comes early rather than never). So each reading is the wall clock or the last
//! reading plus the time elapsed since by the monotonic clock, whichever is later.

use std::sync::Mutex;
use std::time::Instant;

/// This machine's wall clock in Unix milliseconds.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A wall clock in Unix ms that never goes backward and keeps running at the monotonic
/// clock's pace when the wall clock is stepped back.
#[derive(Debug)]
pub struct Clock {
    /// The last reading, and when (monotonic) it was taken.
    last: Mutex<Option<(u64, Instant)>>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            last: Mutex::new(None),
        }
    }
}

impl Clock {
    /// The time now, in Unix ms.
    pub fn now_ms(&self) -> u64 {
        self.reading(wall_clock_ms(), Instant::now())
    }

    fn reading(&self, wall_ms: u64, now: Instant) -> u64 {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let reading = match *last {
            Some((ms, at)) => wall_ms.max(ms + now.saturating_duration_since(at).as_millis() as u64),
            None => wall_ms,
        };
        *last = Some((reading, now));
        reading
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_clock_stepped_back_keeps_running_and_one_stepped_forward_is_followed() {
        let clock = Clock::default();
        let start = Instant::now();
        const T: u64 = 1_800_000_000_000;
        assert_eq!(clock.reading(T, start), T);
        // The wall clock goes back an hour; a second passes.
        let later = start + Duration::from_secs(1);
        assert_eq!(clock.reading(T - 3_600_000 + 1_000, later), T + 1_000);
        let even_later = later + Duration::from_millis(500);
        assert_eq!(clock.reading(T - 3_600_000 + 1_500, even_later), T + 1_500);
        // Forward by a minute: followed.
        assert_eq!(clock.reading(T + 61_500, even_later), T + 61_500);
        // Never backward, even for the same instant.
        assert_eq!(clock.reading(0, even_later), T + 61_500);
    }
}
