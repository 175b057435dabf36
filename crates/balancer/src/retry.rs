//! Retry policy: which failures may be retried, a budget that caps retries at a fraction of
//! requests (so a sick cluster is not hammered by a retry storm), and jittered backoff.

use crate::clock::RandomSource;
use http::{Method, StatusCode};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Token bucket in thousandths of a token: every request deposits `ratio` tokens, every retry
/// withdraws one. So over any run, retries ≤ initial + ratio × requests.
#[derive(Debug)]
pub struct RetryBudget {
    deposit_milli: i64,
    cap_milli: i64,
    balance_milli: AtomicI64,
    exhausted: AtomicU64,
}

impl RetryBudget {
    pub fn new(ratio: f64, max_tokens: u32, initial_tokens: u32) -> Self {
        Self {
            deposit_milli: (ratio * 1000.0).round() as i64,
            cap_milli: i64::from(max_tokens) * 1000,
            balance_milli: AtomicI64::new(i64::from(initial_tokens.min(max_tokens)) * 1000),
            exhausted: AtomicU64::new(0),
        }
    }

    /// Called once per client request.
    #[inline]
    pub fn deposit(&self) {
        if self.deposit_milli == 0 || self.balance_milli.load(Relaxed) >= self.cap_milli {
            return;
        }
        let _ = self.balance_milli.fetch_update(Relaxed, Relaxed, |b| {
            Some((b + self.deposit_milli).min(self.cap_milli))
        });
    }

    /// Takes one retry token; false (and counted) when the budget is spent.
    pub fn try_withdraw(&self) -> bool {
        let ok = self
            .balance_milli
            .fetch_update(Relaxed, Relaxed, |b| (b >= 1000).then_some(b - 1000))
            .is_ok();
        if !ok {
            self.exhausted.fetch_add(1, Relaxed);
        }
        ok
    }

    /// Retries refused because the budget was spent.
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Relaxed)
    }
}

/// GET, HEAD, PUT and DELETE may be sent twice without changing the outcome (RFC 9110 §9.2.2).
#[inline]
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// How an attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The backend refused the connection: the request surely never reached it.
    Refused,
    /// Connecting failed otherwise (unreachable, connect timeout): no byte of the request
    /// was sent.
    Connect,
    /// The connection broke after the request was sent, before a response: the backend may
    /// have acted.
    Broken,
    /// The backend answered 503 (hakv: refused before doing anything).
    Unavailable,
    /// The backend answered 502 or 504: it lost its own answer or gave up waiting, and a
    /// write's outcome is unknown.
    OutcomeUnknown,
}

impl Failure {
    /// The failure a backend's 5xx answer stands for, if it is one worth retrying.
    pub fn from_status(status: StatusCode) -> Option<Failure> {
        match status {
            StatusCode::SERVICE_UNAVAILABLE => Some(Failure::Unavailable),
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => Some(Failure::OutcomeUnknown),
            _ => None,
        }
    }

    /// Whether a request may be retried after this failure. The rule is at-most-once for
    /// writes: a write is sent again only when the first attempt provably did nothing.
    /// - Any request, when it surely never reached a backend (connection refused or not
    ///   established).
    /// - Idempotent methods after a 503, which hakv answers only before doing anything.
    /// - Only reads (GET, HEAD, OPTIONS) when the first attempt may have been applied: a broken
    ///   connection, a 502 or a 504. A write sent twice could land on both sides of another
    ///   client's write, and readers would see one write happen twice; a conditional write
    ///   sent twice would answer 412 for a write that succeeded. The client gets the error
    ///   and knows whether repeating its write is safe.
    pub fn retryable(self, method: &Method) -> bool {
        let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        match self {
            Failure::Refused | Failure::Connect => true,
            Failure::Unavailable => is_idempotent(method),
            Failure::Broken | Failure::OutcomeUnknown => read,
        }
    }
}

/// Full-jitter backoff before retry number `retry` (1-based): uniform in [0, base × 2^(retry-1)).
pub fn backoff(base: Duration, retry: u32, rng: &dyn RandomSource) -> Duration {
    let ceiling = base.as_micros() as u64 * (1u64 << (retry.saturating_sub(1)).min(10));
    if ceiling == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(rng.below(ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ScriptedRandom, SplitMix64};

    #[test]
    fn retries_never_exceed_the_ratio_of_requests() {
        let budget = RetryBudget::new(0.2, 100, 0);
        let mut retries = 0;
        for requests in 1..=1000u64 {
            budget.deposit();
            // Every request fails and wants two retries.
            for _ in 0..2 {
                if budget.try_withdraw() {
                    retries += 1;
                }
            }
            assert!(
                retries * 5 <= requests,
                "{retries} retries after {requests} requests"
            );
        }
        assert_eq!(retries, 200);
        assert!(budget.exhausted() > 0);
    }

    #[test]
    fn the_initial_tokens_allow_a_few_retries_before_any_traffic() {
        let budget = RetryBudget::new(0.2, 100, 2);
        assert!(budget.try_withdraw());
        assert!(budget.try_withdraw());
        assert!(!budget.try_withdraw());
    }

    #[test]
    fn quiet_times_save_up_at_most_the_cap() {
        let budget = RetryBudget::new(0.5, 3, 0);
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..10).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 3);
    }

    #[test]
    fn a_write_is_retried_only_when_the_first_attempt_provably_did_nothing() {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::GET] {
            assert!(Failure::Refused.retryable(&method), "{method}");
            assert!(Failure::Connect.retryable(&method), "{method}");
        }
        for method in [Method::PUT, Method::DELETE, Method::GET, Method::HEAD] {
            assert!(Failure::Unavailable.retryable(&method), "{method}");
        }
        assert!(!Failure::Unavailable.retryable(&Method::POST));
        for failure in [Failure::Broken, Failure::OutcomeUnknown] {
            for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
                assert!(failure.retryable(&method), "{failure:?} {method}");
            }
            for method in [Method::PUT, Method::DELETE, Method::POST, Method::PATCH] {
                assert!(!failure.retryable(&method), "{failure:?} {method}");
            }
        }
    }

    #[test]
    fn backend_answers_map_to_what_they_say_about_the_outcome() {
        assert_eq!(
            Failure::from_status(StatusCode::SERVICE_UNAVAILABLE),
            Some(Failure::Unavailable)
        );
        for status in [StatusCode::BAD_GATEWAY, StatusCode::GATEWAY_TIMEOUT] {
            assert_eq!(Failure::from_status(status), Some(Failure::OutcomeUnknown));
        }
        assert_eq!(Failure::from_status(StatusCode::INTERNAL_SERVER_ERROR), None);
    }

    #[test]
    fn backoff_grows_and_stays_below_its_ceiling() {
        let base = Duration::from_millis(2);
        let top = ScriptedRandom::new(vec![u64::MAX]);
        assert!(backoff(base, 1, &top) < Duration::from_millis(2));
        let rng = ScriptedRandom::new(vec![5_000]);
        assert_eq!(backoff(base, 3, &rng), Duration::from_millis(5));
        let rng = SplitMix64::new(3);
        for retry in 1..20 {
            assert!(backoff(base, retry, &rng) < base * 1024);
        }
    }
}
