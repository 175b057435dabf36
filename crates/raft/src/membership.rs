//! Runtime membership changes on the leader, over openraft: add a node as a learner (checking
//! first that it runs, then waiting until it has caught up: openraft 0.9's own "blocking"
//! add gives up after half a second and reports success anyway), and then promote it to
//! voter or keep it as a read replica (a learner that serves reads and never votes), promote
//! a read replica later, or remove a node.
//! Each change commits through the log; openraft runs a joint configuration in between, so
//! quorums overlap. Adding a voter twice or removing a stranger is an error, not a no-op.

use crate::leadership::leader_hint;
use crate::{NodeId, RaftNode};
use openraft::RaftMetrics;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use std::collections::BTreeSet;
use std::time::Duration;

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
    /// Adding a member that is already one (`role`: voter or learner), or promoting a voter.
    #[error("node {id} is already a {role}")]
    AlreadyMember { id: NodeId, role: &'static str },
    /// Removing a node that is not a member.
    #[error("node {0} is not a member")]
    NotMember(NodeId),
    /// Nothing answers at the new member's address: nothing changed.
    #[error("cannot reach node {id} at {addr}: {reason}; start it first (hakv serve --join)")]
    Unreachable {
        id: NodeId,
        addr: String,
        reason: String,
    },
    /// The new member did not catch up in time; it stays a learner (it serves reads, never
    /// votes) and can be promoted, or removed.
    #[error(
        "node {id} did not catch up within {waited:?} (matched {matched:?} of {target}); it stays a learner"
    )]
    CatchUpTimeout {
        id: NodeId,
        waited: Duration,
        matched: Option<u64>,
        target: u64,
    },
}

/// How long adding a member waits for it to catch up before leaving it a learner. A large
/// state is sent as a paced snapshot (64 MiB/s by default), so this allows about 35 GiB.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest wait for a connection to the new member's address before adding it.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// Adds `id` at `addr` as a learner and returns once it holds every entry the leader had
    /// when it was added (or fails after `timeout`, leaving it a learner).
    pub async fn add_learner(
        &self,
        id: NodeId,
        addr: String,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        // Only the leader changes the membership: a follower dials no address a client chose.
        let metrics = self.leadership.metrics();
        if metrics.current_leader != Some(self.id) {
            return Err(MembershipError::NotLeader {
                leader: leader_hint(&metrics),
            });
        }
        reachable(id, &addr).await?;
        let added = self
            .raft
            .add_learner(id, BasicNode::new(addr), false)
            .await
            .map_err(|e| classify(self, e))?;
        self.wait_caught_up(id, added.log_id.index, timeout).await
    }

    /// Adds `id` as a learner, waits until it has caught up, then makes it a voter. A voter
    /// already is refused; a learner is only caught up and promoted.
    pub async fn add_voter(
        &self,
        id: NodeId,
        addr: String,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        if self.role_of(id) == Some("voter") {
            return Err(MembershipError::AlreadyMember { id, role: "voter" });
        }
        self.add_learner(id, addr, timeout).await?;
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// Adds `id` as a read replica: a learner, kept one, that has caught up when this returns
    /// (or fails after `timeout`, still a learner that keeps catching up). Any member already
    /// is refused.
    pub async fn add_read_replica(
        &self,
        id: NodeId,
        addr: String,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        if let Some(role) = self.role_of(id) {
            return Err(MembershipError::AlreadyMember { id, role });
        }
        self.add_learner(id, addr, timeout).await
    }

    /// Makes the learner `id` a voter once it holds every entry this leader has now (or fails
    /// after `timeout`, leaving it a learner).
    pub async fn promote(&self, id: NodeId, timeout: Duration) -> Result<(), MembershipError> {
        let metrics = self.leadership.metrics();
        if metrics.current_leader != Some(self.id) {
            return Err(MembershipError::NotLeader {
                leader: leader_hint(&metrics),
            });
        }
        match self.role_of(id) {
            None => return Err(MembershipError::NotMember(id)),
            Some("voter") => return Err(MembershipError::AlreadyMember { id, role: "voter" }),
            Some(_) => {}
        }
        let target = metrics.last_log_index.unwrap_or_default();
        self.wait_caught_up(id, target, timeout).await?;
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// `id`'s role in the membership this node knows: `voter`, `learner`, or none.
    fn role_of(&self, id: NodeId) -> Option<&'static str> {
        let membership = self.leadership.metrics().membership_config.clone();
        let membership = membership.membership();
        if membership.voter_ids().any(|voter| voter == id) {
            Some("voter")
        } else {
            membership.get_node(&id).map(|_| "learner")
        }
    }

    /// Waits until `id` has matched the log up to `target` (at least), as this leader's
    /// replication reports it.
    async fn wait_caught_up(
        &self,
        id: NodeId,
        target: u64,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        let started = tokio::time::Instant::now();
        let mut metrics = self.raft.metrics();
        loop {
            let matched = matched_index(&metrics.borrow(), id);
            if matched.is_some_and(|m| m >= target) {
                return Ok(());
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(MembershipError::CatchUpTimeout {
                    id,
                    waited: timeout,
                    matched,
                    target,
                });
            }
            if self.leadership.metrics().current_leader != Some(self.id) {
                return Err(MembershipError::NotLeader {
                    leader: leader_hint(&self.leadership.metrics()),
                });
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), metrics.changed()).await;
        }
    }

    /// Removes `id` from the cluster, voter or learner. Removing the leader itself this way
    /// makes it step down once the change commits, leaving the cluster leaderless for an
    /// election; [`hand_over_leadership`](Self::hand_over_leadership) first avoids that.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), MembershipError> {
        let membership = self.leadership.metrics().membership_config.clone();
        if membership.membership().get_node(&id).is_none() {
            return Err(MembershipError::NotMember(id));
        }
        let is_voter = membership.membership().voter_ids().any(|voter| voter == id);
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

/// How far `id`'s log matches the leader's, as the leader's replication metrics say.
fn matched_index(metrics: &RaftMetrics<NodeId, BasicNode>, id: NodeId) -> Option<u64> {
    let replication = metrics.replication.as_ref()?;
    replication.get(&id).copied().flatten().map(|log_id| log_id.index)
}

/// Fails unless something accepts connections at `addr`: adding a member nobody runs would
/// leave a learner that never catches up (and, promoted, a dead voter in every quorum).
async fn reachable(id: NodeId, addr: &str) -> Result<(), MembershipError> {
    let unreachable = |reason: String| MembershipError::Unreachable {
        id,
        addr: addr.to_owned(),
        reason,
    };
    match tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!("no connection within {REACH_TIMEOUT:?}"))),
    }
}
