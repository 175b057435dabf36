//! Retry policy: which failures may be retried, a budget that caps retries at a fraction of
//! requests (so a sick cluster is not hammered by a retry storm), and jittered backoff.

use crate::clock::RandomSource;
use http::{HeaderMap, Method, StatusCode, header};
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
    /// Connecting failed otherwise (unreachable, connect timeout).
    Connect,
    /// The connection broke before a response (reset, closed); the backend may have acted.
    Broken,
    /// The backend answered 502 or 503 (hakv: refused before doing anything).
    Unavailable,
    /// The backend answered 504: it gave up waiting, and a write's outcome is unknown.
    GatewayTimeout,
}

impl Failure {
    /// The failure a backend's 5xx answer stands for, if it is one worth retrying.
    pub fn from_status(status: StatusCode) -> Option<Failure> {
        match status {
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => Some(Failure::Unavailable),
            StatusCode::GATEWAY_TIMEOUT => Some(Failure::GatewayTimeout),
            _ => None,
        }
    }

    /// Whether a request may be retried after this failure:
    /// - anything, when it surely never reached a backend (connection refused);
    /// - idempotent methods after other connect failures, a broken connection, or 502/503;
    /// - but a *conditional* write (`If-Match`, `If-None-Match`, `If-Unmodified-Since`) not
    ///   after a broken connection: if the first attempt was applied, the retry would fail
    ///   its precondition and report a 412 for a write that succeeded;
    /// - after a 504 (outcome unknown) only reads: a write sent twice could be applied twice,
    ///   around someone else's write, which readers would see as one write happening twice.
    pub fn retryable(self, method: &Method, headers: &HeaderMap) -> bool {
        let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        match self {
            Failure::Refused => true,
            Failure::Connect | Failure::Unavailable => is_idempotent(method),
            Failure::Broken => read || (is_idempotent(method) && !is_conditional(headers)),
            Failure::GatewayTimeout => read,
        }
    }
}

/// A request whose effect depends on the target's current state.
fn is_conditional(headers: &HeaderMap) -> bool {
    [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_UNMODIFIED_SINCE,
    ]
    .iter()
    .any(|name| headers.contains_key(name))
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
    fn only_idempotent_requests_retry_after_the_request_may_have_arrived() {
        let plain = HeaderMap::new();
        assert!(Failure::Broken.retryable(&Method::PUT, &plain));
        assert!(Failure::Unavailable.retryable(&Method::GET, &plain));
        assert!(!Failure::Broken.retryable(&Method::POST, &plain));
        assert!(!Failure::Unavailable.retryable(&Method::POST, &plain));
        assert!(!Failure::Connect.retryable(&Method::POST, &plain));
        assert!(Failure::Refused.retryable(&Method::POST, &plain));
    }

    #[test]
    fn conditional_writes_and_unknown_outcomes_are_not_repeated() {
        let plain = HeaderMap::new();
        for name in [
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_UNMODIFIED_SINCE,
        ] {
            let mut conditional = HeaderMap::new();
            conditional.insert(name.clone(), "\"7\"".parse().unwrap());
            assert!(!Failure::Broken.retryable(&Method::PUT, &conditional), "{name}");
            assert!(
                !Failure::Broken.retryable(&Method::DELETE, &conditional),
                "{name}"
            );
            // Surely not applied: retried like any idempotent request.
            assert!(
                Failure::Unavailable.retryable(&Method::PUT, &conditional),
                "{name}"
            );
            assert!(Failure::Refused.retryable(&Method::PUT, &conditional), "{name}");
            // A read stays safe to repeat.
            assert!(Failure::Broken.retryable(&Method::GET, &conditional), "{name}");
        }
        assert_eq!(
            Failure::from_status(StatusCode::GATEWAY_TIMEOUT),
            Some(Failure::GatewayTimeout)
        );
        assert!(Failure::GatewayTimeout.retryable(&Method::GET, &plain));
        assert!(Failure::GatewayTimeout.retryable(&Method::HEAD, &plain));
        for method in [Method::PUT, Method::DELETE, Method::POST] {
            assert!(!Failure::GatewayTimeout.retryable(&method, &plain), "{method}");
        }
        assert_eq!(
            Failure::from_status(StatusCode::BAD_GATEWAY),
            Some(Failure::Unavailable)
        );
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
