//! One warning per peer and per interval when calls to it fail, instead of openraft's three
//! log lines per failed append (every heartbeat, about 20 a second, while a follower is down
//! or paused; hakv turns those targets off). The metrics count every failure
//! (`hakv_raft_peer_rpc_errors_total`); the log says when trouble starts, how much of it there
//! was, and when the peer answers again, each at most once per interval, so a peer that
//! fails now and then between answers (a busy follower missing the 50 ms append timeout)
//! costs two lines per interval, not two per failure.

use crate::NodeId;
use openraft::network::RPCTypes;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// At most one warning, and one "answers again", per peer this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The failure log of calls to one peer, shared by every connection to it.
#[derive(Default)]
pub(crate) struct PeerTrouble {
    /// Set by a failure, cleared by the next answer: answers, the common case, only read it.
    failing: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    warned_at: Option<Instant>,
    recovered_at: Option<Instant>,
    /// Failures since the last warning.
    unreported: u64,
}

fn due(last: Option<Instant>) -> bool {
    last.is_none_or(|at| at.elapsed() >= LOG_EVERY)
}

impl PeerTrouble {
    /// A call to `target` failed. True when this was logged.
    pub(crate) fn failed(&self, target: NodeId, action: RPCTypes, error: &dyn std::fmt::Display) -> bool {
        metrics::counter!("hakv_raft_peer_rpc_errors_total", "rpc" => action.to_string()).increment(1);
        self.failing.store(true, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !due(state.warned_at) {
            state.unreported += 1;
            return false;
        }
        let earlier = std::mem::take(&mut state.unreported);
        state.warned_at = Some(Instant::now());
        tracing::warn!(
            peer = target,
            rpc = %action,
            error = %error,
            failures_since_last_warning = earlier,
            "calls to a peer fail"
        );
        true
    }

    /// A call to `target` succeeded. True when its recovery was logged.
    pub(crate) fn answered(&self, target: NodeId) -> bool {
        if !self.failing.swap(false, Ordering::Relaxed) {
            return false;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !due(state.recovered_at) {
            return false;
        }
        state.recovered_at = Some(Instant::now());
        tracing::info!(
            peer = target,
            failures_since_last_warning = state.unreported,
            "a peer answers again"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_fails_between_answers_is_logged_once_per_interval() {
        let trouble = PeerTrouble::default();
        assert!(!trouble.answered(2), "nothing to recover from");
        assert!(trouble.failed(2, RPCTypes::AppendEntries, &"timeout"));
        assert!(trouble.answered(2));
        let mut logged = 0;
        for _ in 0..100 {
            logged += trouble.failed(2, RPCTypes::AppendEntries, &"timeout") as u32;
            logged += trouble.answered(2) as u32;
        }
        assert_eq!(logged, 0, "within the interval, flapping logs nothing more");
        assert_eq!(trouble.state.lock().unwrap().unreported, 100);
    }
}
