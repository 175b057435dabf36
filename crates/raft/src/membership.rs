//! Runtime membership changes on the leader, as thin wrappers over openraft: add a node as a
//! learner (waiting until it has caught up), promote it, or remove a node. Each change commits
//! through the log; openraft runs a joint configuration in between, so quorums overlap.

use crate::leadership::leader_hint;
use crate::{NodeId, RaftNode};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Only the leader changes membership; `leader` is the one this node knows of.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// openraft refused the change (another change in progress, unknown learner, ...): nothing
    /// changed.
    #[error("membership change refused: {0}")]
    Refused(String),
    /// The change was proposed but its fate is unknown (shutdown, lost leadership).
    #[error("membership change outcome unknown: {0}")]
    Unknown(String),
}

fn classify(node: &RaftNode, err: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> MembershipError {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => MembershipError::NotLeader {
            leader: leader_hint(&node.leadership.metrics()),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            MembershipError::Refused(e.to_string())
        }
        RaftError::Fatal(e) => MembershipError::Unknown(e.to_string()),
    }
}

impl RaftNode {
    /// Adds `id` at `addr` as a learner and returns once it has caught up with the leader's log.
    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<(), MembershipError> {
        self.raft
            .add_learner(id, BasicNode::new(addr), true)
            .await
            .map(|_| ())
            .map_err(|e| classify(self, e))
    }

    /// Adds `id` as a learner, waits until it has caught up, then makes it a voter.
    pub async fn add_voter(&self, id: NodeId, addr: String) -> Result<(), MembershipError> {
        self.add_learner(id, addr).await?;
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// Removes `id` from the cluster, voter or learner. Removing the leader itself this way
    /// makes it step down once the change commits, leaving the cluster leaderless for an
    /// election; [`hand_over_leadership`](Self::hand_over_leadership) first avoids that.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), MembershipError> {
        let is_voter = self
            .leadership
            .metrics()
            .membership_config
            .membership()
            .voter_ids()
            .any(|voter| voter == id);
        let ids = BTreeSet::from([id]);
        // With `retain = false`, a removed voter does not stay on as a learner.
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.change_membership(change).await
    }

    /// Applies one membership change (`retain = false`: removed voters do not stay learners).
    pub async fn change_membership(
        &self,
        changes: ChangeMembers<NodeId, BasicNode>,
    ) -> Result<(), MembershipError> {
        self.raft
            .change_membership(changes, false)
            .await
            .map(|_| ())
            .map_err(|e| classify(self, e))
    }
}
