//! Passive outlier ejection: a backend that fails several requests in a row is taken out for a
//! time that grows with each ejection, but never more than a set fraction of the backends at
//! once (ejecting everyone would turn a partial outage into a total one). The health checker
//! brings it back once the time is up and a probe succeeds.

use crate::backend::Backend;
use crate::clock::Clock;
use crate::config::OutlierConfig;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Clone)]
pub struct OutlierDetector {
    config: OutlierConfig,
}

impl OutlierDetector {
    pub fn new(config: OutlierConfig) -> Self {
        Self { config }
    }

    /// A good answer resets the streak.
    #[inline]
    pub fn on_success(&self, backend: &Backend) {
        // Read first: avoids a write (and a cache-line bounce) on every successful request.
        if backend.state.consecutive_failures.load(Relaxed) != 0 {
            backend.state.consecutive_failures.store(0, Relaxed);
        }
    }

    /// A connect error or 5xx; may eject. Returns true when this call ejected the backend.
    pub fn on_failure(&self, backend: &Backend, all: &[Arc<Backend>], clock: &dyn Clock) -> bool {
        backend.stats.errors.fetch_add(1, Relaxed);
        let streak = backend.state.consecutive_failures.fetch_add(1, Relaxed) + 1;
        if self.config.consecutive_failures == 0 || streak < self.config.consecutive_failures {
            return false;
        }
        let ejected_now = all.iter().filter(|b| b.is_ejected()).count();
        let allowed = (self.config.max_ejected_fraction * all.len() as f64).floor() as usize;
        if ejected_now >= allowed {
            return false;
        }
        if backend
            .state
            .ejected
            .compare_exchange(false, true, Relaxed, Relaxed)
            .is_err()
        {
            return false;
        }
        let n = backend.state.ejection_count.fetch_add(1, Relaxed) + 1;
        let length = (self.config.base_ejection_ms * u64::from(n)).min(self.config.max_ejection_ms);
        let now = clock.now().as_millis() as u64;
        backend.state.ejected_until_ms.store(now + length, Relaxed);
        backend.state.consecutive_failures.store(0, Relaxed);
        backend.stats.ejections.fetch_add(1, Relaxed);
        tracing::warn!(
            backend = backend.addr(),
            ejection_ms = length,
            "backend ejected after {streak} failures in a row"
        );
        true
    }

    /// Ends an ejection whose time is up; called by the health checker after a good probe.
    pub fn maybe_return(&self, backend: &Backend, clock: &dyn Clock) -> bool {
        if !backend.is_ejected() {
            return false;
        }
        let now = clock.now().as_millis() as u64;
        if now < backend.state.ejected_until_ms.load(Relaxed) {
            return false;
        }
        backend.state.ejected.store(false, Relaxed);
        tracing::info!(
            backend = backend.addr(),
            "ejection over, backend back in rotation"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::backends;
    use crate::clock::ManualClock;
    use std::time::Duration;

    fn detector() -> OutlierDetector {
        OutlierDetector::new(OutlierConfig {
            consecutive_failures: 3,
            base_ejection_ms: 1000,
            max_ejection_ms: 2500,
            max_ejected_fraction: 0.5,
        })
    }

    #[test]
    fn ejects_after_a_streak_and_a_success_resets_the_streak() {
        let (d, clock, bs) = (detector(), ManualClock::default(), backends(&[1, 1]));
        assert!(!d.on_failure(&bs[0], &bs, &clock));
        assert!(!d.on_failure(&bs[0], &bs, &clock));
        d.on_success(&bs[0]);
        assert!(!d.on_failure(&bs[0], &bs, &clock));
        assert!(!d.on_failure(&bs[0], &bs, &clock));
        assert!(d.on_failure(&bs[0], &bs, &clock));
        assert!(!bs[0].is_available());
    }

    #[test]
    fn ejection_time_grows_and_is_capped() {
        let (d, clock, bs) = (detector(), ManualClock::default(), backends(&[1, 1]));
        for expected_ms in [1000, 2000, 2500] {
            for _ in 0..3 {
                d.on_failure(&bs[0], &bs, &clock);
            }
            assert!(bs[0].is_ejected());
            clock.advance(Duration::from_millis(expected_ms - 1));
            assert!(!d.maybe_return(&bs[0], &clock));
            clock.advance(Duration::from_millis(1));
            assert!(d.maybe_return(&bs[0], &clock));
        }
    }

    #[test]
    fn never_ejects_more_than_the_allowed_fraction() {
        let (d, clock, bs) = (detector(), ManualClock::default(), backends(&[1, 1, 1, 1]));
        for b in &bs {
            for _ in 0..3 {
                d.on_failure(b, &bs, &clock);
            }
        }
        assert_eq!(bs.iter().filter(|b| b.is_ejected()).count(), 2);
    }
}
