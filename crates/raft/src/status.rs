//! A node's view of the cluster for `GET /cluster`, taken from openraft's metrics and the log
//! store's commit index without a round trip.

use crate::NodeId;
use crate::leadership::address_of;
use openraft::{BasicNode, RaftMetrics, ServerState};
use serde::Serialize;

/// What one node knows about the cluster right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub state: NodeRole,
    /// The Raft term this node is in.
    pub term: u64,
    /// The leader this node knows of, if any.
    pub leader: Option<PeerAddr>,
    /// Index of the last entry in this node's log (appended, not necessarily committed).
    pub last_log_index: Option<u64>,
    /// Index of the last entry this node knows to be committed (a follower learns it with
    /// the next append or heartbeat, so it may trail the leader's by one heartbeat).
    pub commit_index: Option<u64>,
    /// Index of the last entry applied to this node's state machine.
    pub applied_index: Option<u64>,
    /// The last entry this node's current snapshot covers (built here or installed).
    pub snapshot_index: Option<u64>,
    /// The last entry removed from this node's log (covered by its snapshot): a member whose
    /// log is behind this must be sent the snapshot.
    pub purged_index: Option<u64>,
    /// On the leader: milliseconds since a quorum last acknowledged it (`None` elsewhere).
    pub millis_since_quorum_ack: Option<u64>,
    /// The effective membership (during a change, the joint configuration's union).
    pub members: Vec<MemberStatus>,
    /// On the leader: how far each other member's log matches the leader's.
    pub replication: Option<Vec<ReplicationStatus>>,
}

/// The Raft role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

/// A node id with the address it advertises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerAddr {
    pub id: NodeId,
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    pub id: NodeId,
    pub addr: String,
    pub role: MemberRole,
}

/// Whether a member votes (counts toward quorums) or only replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Voter,
    Learner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationStatus {
    pub id: NodeId,
    /// Last index known to match the leader's log (`None`: not yet probed).
    pub matched_index: Option<u64>,
    /// Entries the member is behind the leader's last log index.
    pub lag: u64,
}

impl ClusterStatus {
    pub(crate) fn from_metrics(
        metrics: &RaftMetrics<NodeId, BasicNode>,
        commit_index: Option<u64>,
    ) -> ClusterStatus {
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                id: *id,
                addr: node.addr.clone(),
                role: if voters.contains(id) {
                    MemberRole::Voter
                } else {
                    MemberRole::Learner
                },
            })
            .collect();
        let last = metrics.last_log_index.unwrap_or(0);
        let replication = metrics.replication.as_ref().map(|progress| {
            progress
                .iter()
                .filter(|(id, _)| **id != metrics.id)
                .map(|(id, matched)| {
                    let matched_index = matched.map(|log_id| log_id.index);
                    ReplicationStatus {
                        id: *id,
                        matched_index,
                        lag: last.saturating_sub(matched_index.unwrap_or(0)),
                    }
                })
                .collect()
        });
        ClusterStatus {
            node_id: metrics.id,
            state: match metrics.state {
                ServerState::Leader => NodeRole::Leader,
                ServerState::Follower => NodeRole::Follower,
                ServerState::Candidate => NodeRole::Candidate,
                ServerState::Learner => NodeRole::Learner,
                ServerState::Shutdown => NodeRole::Shutdown,
            },
            term: metrics.current_term,
            leader: metrics.current_leader.map(|id| PeerAddr {
                id,
                addr: address_of(metrics, id).unwrap_or_default(),
            }),
            last_log_index: metrics.last_log_index,
            commit_index,
            applied_index: metrics.last_applied.map(|log_id| log_id.index),
            snapshot_index: metrics.snapshot.map(|log_id| log_id.index),
            purged_index: metrics.purged.map(|log_id| log_id.index),
            millis_since_quorum_ack: metrics.millis_since_quorum_ack,
            members,
            replication,
        }
    }
}
