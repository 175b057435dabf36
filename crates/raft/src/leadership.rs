//! What this node currently knows about leadership, read from openraft's metrics without a
//! round trip: whether it leads, whether a quorum acknowledged it recently, and who leads
//! otherwise. Proposals and read barriers consult it before touching Raft, so that a follower
//! or a leader cut off in a minority answers at once instead of waiting on the network.

use crate::NodeId;
use openraft::{BasicNode, RaftMetrics, ServerState};
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
}

impl Leadership {
    pub(crate) fn new(
        metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>,
        quorum_window_ms: u64,
    ) -> Self {
        Leadership {
            metrics,
            quorum_window_ms,
        }
    }

    pub(crate) fn standing(&self) -> Standing {
        standing(&self.metrics.borrow(), self.quorum_window_ms)
    }

    /// True if `metrics` show this node leading with a recent quorum acknowledgement.
    pub(crate) fn stands_in(&self, metrics: &RaftMetrics<NodeId, BasicNode>) -> bool {
        standing(metrics, self.quorum_window_ms) == Standing::Leader
    }

    pub(crate) fn metrics(&self) -> RaftMetrics<NodeId, BasicNode> {
        self.metrics.borrow().clone()
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
