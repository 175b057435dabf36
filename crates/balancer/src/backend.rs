//! One backend and its live state: health, ejection, draining, in-flight count, latency EWMA and
//! counters. Everything is atomic so the proxy, the health checker and the admin API share a
//! backend without locks.

use http::uri::Authority;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets exported in `/metrics`.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Weight given to a new sample in the latency EWMA; high enough to follow a backend that turns
/// slow within a handful of requests.
const EWMA_ALPHA: f64 = 0.3;

/// A sample counts as at most this many times the current estimate.
const MAX_SAMPLE_JUMP: f64 = 4.0;

/// Time constant of the EWMA's decay towards zero while a backend gets no responses. Without it
/// p2c would starve a backend forever after one slow answer (e.g. the first one, which pays for
/// the TCP connect): nobody sends it a request, so its estimate never improves. With it, an
/// avoided backend looks cheaper and cheaper until it is tried again (as in Finagle's and
/// Linkerd's peak-EWMA).
const EWMA_DECAY_SECS: f64 = 0.25;

#[derive(Debug)]
pub struct Backend {
    addr: String,
    authority: Authority,
    weight: AtomicU32,
    pub(crate) state: BackendState,
    pub(crate) stats: BackendStats,
}

/// Liveness as decided by health checks, outlier ejection and the operator.
#[derive(Debug, Default)]
pub(crate) struct BackendState {
    pub healthy: AtomicBool,
    pub draining: AtomicBool,
    pub ejected: AtomicBool,
    /// Clock time (ms) before which an ejected backend stays out.
    pub ejected_until_ms: AtomicU64,
    pub ejection_count: AtomicU32,
    pub consecutive_failures: AtomicU32,
    pub probe_successes: AtomicU32,
    pub probe_failures: AtomicU32,
    pub in_flight: AtomicU64,
    /// f64 bits of the latency EWMA in seconds; 0 until the first response.
    pub ewma_latency: AtomicU64,
    /// Clock time (ns) of the last EWMA update.
    pub ewma_updated_nanos: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct BackendStats {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    pub health_transitions: AtomicU64,
    pub ejections: AtomicU64,
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    pub latency_count: AtomicU64,
    pub latency_sum_nanos: AtomicU64,
}

impl Backend {
    /// A backend that starts healthy (optimistically, like nginx and HAProxy) so traffic flows
    /// before the first health check; a dead one is marked down after `fall` probes.
    pub fn new(authority: Authority, weight: u32) -> Self {
        let state = BackendState::default();
        state.healthy.store(true, Relaxed);
        Self {
            addr: authority.as_str().to_owned(),
            authority,
            weight: AtomicU32::new(weight),
            state,
            stats: BackendStats::default(),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    pub(crate) fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Relaxed);
    }

    /// May receive new requests: healthy, not ejected, not draining.
    pub fn is_available(&self) -> bool {
        self.state.healthy.load(Relaxed)
            && !self.state.ejected.load(Relaxed)
            && !self.state.draining.load(Relaxed)
    }

    /// May receive new requests, in panic mode (no backend available) or not: in panic mode
    /// failed health checks are ignored, ejection and draining are not.
    #[inline]
    pub fn is_selectable(&self, panic: bool) -> bool {
        if panic {
            !self.is_draining() && !self.is_ejected()
        } else {
            self.is_available()
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.state.healthy.load(Relaxed)
    }

    pub fn is_ejected(&self) -> bool {
        self.state.ejected.load(Relaxed)
    }

    pub fn is_draining(&self) -> bool {
        self.state.draining.load(Relaxed)
    }

    pub fn set_draining(&self, draining: bool) {
        self.state.draining.store(draining, Relaxed);
    }

    pub fn in_flight(&self) -> u64 {
        self.state.in_flight.load(Relaxed)
    }

    /// Latency EWMA in seconds as of the last response (0 before the first one).
    pub fn ewma_latency(&self) -> f64 {
        f64::from_bits(self.state.ewma_latency.load(Relaxed))
    }

    /// The EWMA decayed for the time since its last update (`now` from the balancer's clock).
    #[inline]
    pub fn ewma_latency_at(&self, now: Duration) -> f64 {
        let ewma = self.ewma_latency();
        let updated = self.state.ewma_updated_nanos.load(Relaxed);
        let idle = now.as_nanos().saturating_sub(u128::from(updated)) as f64 / 1e9;
        if idle <= 0.0 {
            ewma
        } else {
            ewma * (-idle / EWMA_DECAY_SECS).exp()
        }
    }

    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.stats.errors.load(Relaxed)
    }

    pub fn ejections(&self) -> u64 {
        self.stats.ejections.load(Relaxed)
    }

    /// Counts a request sent here and holds an in-flight slot until the guard drops (which is
    /// when the response body is finished, so least-connections sees streaming responses too).
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.stats.requests.fetch_add(1, Relaxed);
        self.state.in_flight.fetch_add(1, Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Feeds the EWMA and the histogram with the time to response headers, measured at `now`.
    pub fn record_latency(&self, latency: Duration, now: Duration) {
        let secs = latency.as_secs_f64();
        // The very first answer pays for the TCP connect (often 10× a pooled request): letting
        // it seed the EWMA made p2c avoid a fresh backend for as long as the decay needed.
        let first = self.stats.latency_count.fetch_add(1, Relaxed) == 0;
        if !first {
            let raw = self.ewma_latency();
            let old = self.ewma_latency_at(now);
            let new = if raw == 0.0 {
                secs
            } else {
                // One outlier (a scheduling hiccup) may at most quadruple the sample's weight
                // relative to the estimate before idling; otherwise a single spike would starve
                // the backend under p2c until the decay caught up. A backend that is really slow
                // still gets there in a few answers.
                let sample = secs.min(raw * MAX_SAMPLE_JUMP);
                old + EWMA_ALPHA * (sample - old)
            };
            // A lost update under a race only drops one sample from an average; no CAS loop.
            self.state.ewma_latency.store(new.to_bits(), Relaxed);
            self.state
                .ewma_updated_nanos
                .store(now.as_nanos() as u64, Relaxed);
        }
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.stats.latency_buckets.get(bucket) {
            b.fetch_add(1, Relaxed);
        }
        self.stats
            .latency_sum_nanos
            .fetch_add(latency.as_nanos() as u64, Relaxed);
    }

    /// Test hook: pretend `n` requests are in flight.
    #[doc(hidden)]
    pub fn set_in_flight_for_test(&self, n: u64) {
        self.state.in_flight.store(n, Relaxed);
    }

    /// Test hook: mark the backend up or down as a health check would.
    #[doc(hidden)]
    pub fn set_healthy_for_test(&self, healthy: bool) {
        self.state.healthy.store(healthy, Relaxed);
    }

    /// Test hook: set the latency EWMA directly, as of clock time zero.
    #[doc(hidden)]
    pub fn set_ewma_for_test(&self, secs: f64) {
        self.state.ewma_latency.store(secs.to_bits(), Relaxed);
        self.state.ewma_updated_nanos.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ewma_follows_samples_and_decays_while_idle() {
        let b = Backend::new("127.0.0.1:1".parse().unwrap(), 1);
        let t = Duration::from_secs(10);
        b.record_latency(Duration::from_millis(90), t); // the connect-inflated first answer
        assert_eq!(b.ewma_latency_at(t), 0.0);
        b.record_latency(Duration::from_millis(10), t);
        assert_eq!(b.ewma_latency_at(t), 0.010);
        b.record_latency(Duration::from_millis(20), t);
        assert!((b.ewma_latency_at(t) - 0.013).abs() < 1e-12);
        // A single spike moves the estimate by at most α × (4 × estimate − estimate).
        let spiky = Backend::new("127.0.0.1:2".parse().unwrap(), 1);
        for ms in [1, 1, 500] {
            spiky.record_latency(Duration::from_millis(ms), t);
        }
        assert!((spiky.ewma_latency_at(t) - 0.0019).abs() < 1e-12);
        // One time constant later the estimate is down to 1/e.
        let later = t + Duration::from_millis(250);
        assert!((b.ewma_latency_at(later) - 0.013 / std::f64::consts::E).abs() < 1e-12);
    }
}

/// An in-flight slot on a backend; released on drop.
#[derive(Debug)]
pub struct InFlight(Arc<Backend>);

impl InFlight {
    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state.in_flight.fetch_sub(1, Relaxed);
    }
}
