//! What this node currently knows about leadership, read from openraft's metrics without a
//! round trip: whether it leads, whether a quorum acknowledged it recently, and who leads
//! otherwise. Proposals and read barriers consult it before touching Raft, so that a follower
//! or a leader cut off in a minority answers at once instead of waiting on the network.

use crate::NodeId;
use openraft::{BasicNode, RaftMetrics, ServerState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::watch;

/// A node id with the address it advertises in the membership.
pub(crate) type LeaderHint = Option<(NodeId, String)>;

/// The node's standing as far as its latest metrics tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Leader, acknowledged by a quorum within the window.
    Leader,
    /// Not the leader; the leader if one is known.
    NotLeader(LeaderHint),
    /// Leader, but no quorum acknowledged it within the window: it may be in a minority.
    NoQuorum,
}

#[derive(Clone)]
pub(crate) struct Leadership {
    metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>,
    /// A leader not acknowledged for this long is treated as cut off (writes and reads there
    /// fail fast instead of waiting for an answer that will not come).
    quorum_window_ms: u64,
    /// When openraft last published metrics. Its core republishes at least every tick, so
    /// metrics older than the window mean a core stuck (on a stalled disk, say): the numbers
    /// in them, `millis_since_quorum_ack` included, are no longer true.
    published: Arc<Published>,
}

/// Milliseconds since `epoch` at the last metrics change.
struct Published {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Published {
    fn age_ms(&self) -> u64 {
        (self.epoch.elapsed().as_millis() as u64).saturating_sub(self.last_ms.load(Ordering::Relaxed))
    }
}

impl Leadership {
    pub(crate) fn new(
        metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>,
        quorum_window_ms: u64,
    ) -> Self {
        let published = Arc::new(Published {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let (watched, mut changes) = (published.clone(), metrics.clone());
        // Ends when openraft drops its metrics sender (the node shut down).
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let now = watched.epoch.elapsed().as_millis() as u64;
                watched.last_ms.store(now, Ordering::Relaxed);
            }
        });
        Leadership {
            metrics,
            quorum_window_ms,
            published,
        }
    }

    pub(crate) fn standing(&self) -> Standing {
        self.standing_in(&self.metrics.borrow())
    }

    /// True if `metrics` show this node leading with a recent quorum acknowledgement.
    pub(crate) fn stands_in(&self, metrics: &RaftMetrics<NodeId, BasicNode>) -> bool {
        self.standing_in(metrics) == Standing::Leader
    }

    fn standing_in(&self, metrics: &RaftMetrics<NodeId, BasicNode>) -> Standing {
        let stale_for = self.published.age_ms();
        standing(metrics, self.quorum_window_ms.saturating_sub(stale_for))
    }

    /// True when openraft's core has published nothing for the quorum window: it is stuck
    /// (a stalled disk, a starved core) or stopped.
    pub(crate) fn core_is_stuck(&self) -> bool {
        self.published.age_ms() >= self.quorum_window_ms
    }

    /// `f` of the latest metrics, without cloning them.
    pub(crate) fn with_metrics<R>(&self, f: impl FnOnce(&RaftMetrics<NodeId, BasicNode>) -> R) -> R {
        f(&self.metrics.borrow())
    }

    pub(crate) fn metrics(&self) -> RaftMetrics<NodeId, BasicNode> {
        self.metrics.borrow().clone()
    }

    /// How long a leader may go without a majority's acknowledgement (and a follower without
    /// its leader's word) before it counts as gone.
    pub(crate) fn stall_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.quorum_window_ms)
    }
}

pub(crate) fn standing(metrics: &RaftMetrics<NodeId, BasicNode>, quorum_window_ms: u64) -> Standing {
    if metrics.state != ServerState::Leader {
        return Standing::NotLeader(leader_hint(metrics));
    }
    // Metrics are republished at least every 1.5 heartbeats (openraft's tick), so this value
    // lags the truth by at most that much.
    match metrics.millis_since_quorum_ack {
        Some(ms) if ms < quorum_window_ms => Standing::Leader,
        _ => Standing::NoQuorum,
    }
}

/// The leader this node knows of, with its advertised address.
pub(crate) fn leader_hint(metrics: &RaftMetrics<NodeId, BasicNode>) -> LeaderHint {
    let leader = metrics.current_leader?;
    let addr = address_of(metrics, leader).unwrap_or_default();
    Some((leader, addr))
}

pub(crate) fn address_of(metrics: &RaftMetrics<NodeId, BasicNode>, id: NodeId) -> Option<String> {
    metrics
        .membership_config
        .membership()
        .get_node(&id)
        .map(|node| node.addr.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recently_acknowledged_leader_stands() {
        let mut metrics = RaftMetrics::<NodeId, BasicNode>::new_initial(1);
        metrics.current_leader = Some(2);
        assert_eq!(
            standing(&metrics, 300),
            Standing::NotLeader(Some((2, String::new())))
        );
        metrics.state = ServerState::Leader;
        metrics.current_leader = Some(1);
        // Just elected, no quorum acknowledgement yet: not trusted to commit.
        assert_eq!(standing(&metrics, 300), Standing::NoQuorum);
        metrics.millis_since_quorum_ack = Some(299);
        assert_eq!(standing(&metrics, 300), Standing::Leader);
        metrics.millis_since_quorum_ack = Some(300);
        assert_eq!(standing(&metrics, 300), Standing::NoQuorum);
    }
}
