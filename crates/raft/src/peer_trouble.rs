//! One warning per peer and per interval when calls to it fail, instead of openraft's three
//! log lines per failed append (every heartbeat, about 20 a second, while a follower is down
//! or paused; hakv turns those targets off). The metrics count every failure
//! (`hakv_raft_peer_rpc_errors_total`); the log says when trouble starts, how much of it there
//! was, and when the peer answers again.

use crate::NodeId;
use openraft::network::RPCTypes;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one warning per peer this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The failure log of calls to one peer.
#[derive(Default)]
pub(crate) struct PeerTrouble {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the last warning was logged; `None` while calls succeed.
    warned_at: Option<Instant>,
    /// Failures since that warning.
    unreported: u64,
}

impl PeerTrouble {
    /// A call to `target` failed.
    pub(crate) fn failed(&self, target: NodeId, action: RPCTypes, error: &dyn std::fmt::Display) {
        metrics::counter!("hakv_raft_peer_rpc_errors_total", "rpc" => action.to_string()).increment(1);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.warned_at {
            Some(at) if at.elapsed() < WARN_EVERY => state.unreported += 1,
            _ => {
                let earlier = std::mem::take(&mut state.unreported);
                state.warned_at = Some(Instant::now());
                tracing::warn!(
                    peer = target,
                    rpc = %action,
                    error = %error,
                    failures_since_last_warning = earlier,
                    "calls to a peer fail"
                );
            }
        }
    }

    /// A call to `target` succeeded.
    pub(crate) fn answered(&self, target: NodeId) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.warned_at.take().is_some() {
            let unreported = std::mem::take(&mut state.unreported);
            tracing::info!(
                peer = target,
                failures_since_last_warning = unreported,
                "a peer answers again"
            );
        }
    }
}
