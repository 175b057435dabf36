//! Injectable time and randomness, so ejection, health and backoff decisions can be tested
//! deterministically.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock: time elapsed since some fixed origin.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A source of uniformly distributed 64-bit numbers.
pub trait RandomSource: Send + Sync + 'static {
    fn next_u64(&self) -> u64;

    /// A number in `0..bound` (`bound > 0`); the modulo bias is negligible for the small bounds
    /// used here (backend counts, backoff microseconds).
    fn below(&self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// SplitMix64: a counter-based generator, so one atomic add per draw and no lock; seeded, so a
/// test that draws from a single task sees the same sequence every run.
#[derive(Debug)]
pub struct SplitMix64 {
    state: AtomicU64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// Seeded from the clock and the address of a stack value; for production use.
    pub fn from_entropy() -> Self {
        let marker = 0u8;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self::new(nanos ^ (&marker as *const u8 as u64).rotate_left(32))
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Replays a fixed script of numbers (cycling); for tests that need exact choices.
#[derive(Debug)]
pub struct ScriptedRandom {
    values: Vec<u64>,
    next: AtomicU64,
}

impl ScriptedRandom {
    pub fn new(values: Vec<u64>) -> Self {
        assert!(!values.is_empty(), "a script needs at least one value");
        Self {
            values,
            next: AtomicU64::new(0),
        }
    }
}

impl RandomSource for ScriptedRandom {
    fn next_u64(&self) -> u64 {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        self.values[i % self.values.len()]
    }
}

/// A stable 64-bit hash (FNV-1a, then the SplitMix64 finalizer to spread the bits). Stable
/// across processes and releases, unlike `DefaultHasher`, so key placement survives restarts.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_reproducible_from_its_seed() {
        let a = SplitMix64::new(7);
        let b = SplitMix64::new(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::default();
        assert_eq!(c.now(), Duration::ZERO);
        c.advance(Duration::from_millis(5));
        assert_eq!(c.now(), Duration::from_millis(5));
    }
}
