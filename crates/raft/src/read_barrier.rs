//! Linearizable reads (ReadIndex): the leader confirms with a quorum that it still leads and
//! learns the read index (its commit index at that moment); a read is linearizable once the
//! local state machine has applied up to it. Followers get the index from the leader and wait
//! for it locally.
//!
//! Confirming leadership costs a heartbeat round, so concurrent readers share rounds
//! ([`Rounds`]: a reader is answered only by a round that started after it arrived).

use crate::leadership::{Leadership, Standing};
use crate::lease::Lease;
use crate::rounds::Rounds;
use crate::state_machine_store::AppliedIndex;
use crate::{NodeId, Raft};
use openraft::BasicNode;
use openraft::error::{CheckIsLeaderError, RaftError};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Why a read barrier could not be passed. Nothing was read; all are safe to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarrierError {
    /// This node does not lead; `leader` is the one it knows of, as (id, advertised address).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// No quorum confirmed this leader (recently, or in the round just tried).
    #[error("the leader could not confirm a quorum")]
    NoQuorum,
    /// The deadline passed before the state machine caught up (or before a quorum answered).
    #[error("timed out")]
    Timeout,
    #[error("the node is shutting down")]
    ShuttingDown,
}

pub(crate) struct ReadBarrier {
    raft: Raft,
    leadership: Leadership,
    applied_index: AppliedIndex,
    lease: Arc<Lease>,
    /// Bound on one confirmation round, so a stuck round cannot hold later readers forever.
    round_timeout: Duration,
    rounds: Arc<Rounds<(), Result<u64, BarrierError>>>,
}

impl ReadBarrier {
    pub(crate) fn new(
        raft: Raft,
        leadership: Leadership,
        applied_index: AppliedIndex,
        lease: Arc<Lease>,
        round_timeout: Duration,
    ) -> Arc<ReadBarrier> {
        Arc::new(ReadBarrier {
            raft,
            leadership,
            applied_index,
            lease,
            round_timeout,
            rounds: Arc::default(),
        })
    }

    /// See [`RaftNode::linearizable_barrier`](crate::RaftNode::linearizable_barrier).
    pub(crate) async fn barrier(self: &Arc<Self>, timeout: Duration) -> Result<u64, BarrierError> {
        let deadline = Instant::now() + timeout;
        match self.leadership.standing() {
            Standing::Leader => {}
            Standing::NotLeader(leader) => return Err(BarrierError::NotLeader { leader }),
            Standing::NoQuorum => return Err(BarrierError::NoQuorum),
        }
        if let Some(index) = self.lease_read_index() {
            metrics::counter!("hakv_raft_lease_reads_total").increment(1);
            return Ok(index);
        }
        let index = self.read_index(deadline).await?;
        self.wait_applied(index, deadline.saturating_duration_since(Instant::now()))
            .await?;
        Ok(index)
    }

    /// The read index without a heartbeat round, when this leader holds a lease (`lease.rs`)
    /// and has applied an entry of its term: what it has applied then.
    fn lease_read_index(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let term = self
            .leadership
            .with_metrics(|metrics| self.lease.holds(metrics, now).then_some(metrics.current_term))?;
        let (applied_term, applied_index) = *self.applied_index.borrow();
        (applied_term == term).then_some(applied_index)
    }

    /// Waits until the local state machine has applied `index`, at most `timeout`.
    pub(crate) async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), BarrierError> {
        if self.applied_index.borrow().1 >= index {
            return Ok(());
        }
        let mut applied = self.applied_index.subscribe();
        match tokio::time::timeout(timeout, applied.wait_for(|(_, applied)| *applied >= index)).await {
            Err(_) => Err(BarrierError::Timeout),
            Ok(Err(_)) => Err(BarrierError::ShuttingDown),
            Ok(Ok(_)) => Ok(()),
        }
    }

    async fn read_index(self: &Arc<Self>, deadline: Instant) -> Result<u64, BarrierError> {
        let this = self.clone();
        let round = move |_readers| {
            let this = this.clone();
            async move { this.confirm().await }
        };
        match tokio::time::timeout_at(deadline, self.rounds.join((), round)).await {
            Err(_) => Err(BarrierError::Timeout),
            Ok(None) => Err(BarrierError::ShuttingDown),
            Ok(Some(result)) => result,
        }
    }

    /// One confirmation, tried again while this node still stands as leader: openraft 0.9
    /// gives each follower one heartbeat interval to answer, which a busy machine often
    /// misses, and one late answer is not a lost majority. A retried round starts after every
    /// waiting reader arrived, so it serves them all.
    async fn confirm(&self) -> Result<u64, BarrierError> {
        let deadline = Instant::now() + self.round_timeout;
        loop {
            let result = self.confirm_once(deadline).await;
            let retry = result == Err(BarrierError::NoQuorum)
                && self.leadership.standing() == Standing::Leader
                && Instant::now() < deadline;
            if !retry {
                return result;
            }
            metrics::counter!("hakv_raft_read_index_retries_total").increment(1);
        }
    }

    async fn confirm_once(&self, deadline: Instant) -> Result<u64, BarrierError> {
        let confirmed = tokio::time::timeout_at(deadline, self.raft.get_read_log_id()).await;
        match confirmed {
            Err(_) => Err(BarrierError::Timeout),
            Ok(Ok((read_log_id, _applied))) => Ok(read_log_id.map_or(0, |id| id.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)))) => {
                Err(BarrierError::NotLeader {
                    leader: forward.leader_id.map(|id| (id, addr_of(forward.leader_node))),
                })
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                Err(BarrierError::NoQuorum)
            }
            Ok(Err(RaftError::Fatal(_))) => Err(BarrierError::ShuttingDown),
        }
    }
}

fn addr_of(node: Option<BasicNode>) -> String {
    node.map(|n| n.addr).unwrap_or_default()
}
