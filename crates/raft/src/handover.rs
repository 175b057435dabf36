//! Leadership handover, which openraft 0.9 does not offer: the leader stops taking
//! proposals, waits until the successor holds its whole log, and asks it to campaign.
//!
//! Why the successor wins at once in a 3-member cluster: a leader's lease (openraft refuses
//! votes for one election timeout after the voter's vote last changed) only covers the time
//! right after the leader's own election, so the old leader grants the successor its vote,
//! steps down, and the two make a majority. The third member still hears the old leader and
//! refuses, which does not matter. In larger clusters the other voters refuse until their
//! lease runs out, and the successor's retry (or another member's election watch) elects a
//! leader about one election timeout later; either way the old leader no longer leads.

use crate::leadership::{Standing, address_of};
use crate::{NodeId, RaftNode};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// How often the handover re-reads the metrics while it waits.
const POLL: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// Only a leader with a quorum hands over.
    #[error("this member does not lead (with a quorum), so it has nothing to hand over")]
    NotLeader,
    /// No other voter to hand over to, or the chosen one is not a voter.
    #[error("no voter to hand leadership to: {0}")]
    NoSuccessor(String),
    /// The handover did not complete in time; this member may still lead.
    #[error("leadership did not move in time: {0}")]
    TimedOut(String),
}

/// Clears the "handing over" flag however the handover ends, so proposals resume.
struct Paused<'a>(&'a RaftNode);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.handing_over.store(false, Ordering::SeqCst);
        // The successor may still win with this member's vote: no lease for a while yet.
        self.0.lease.suspend_until(std::time::Instant::now());
    }
}

impl RaftNode {
    /// The voter best placed to lead next: the one whose log matches this leader's furthest.
    fn best_successor(&self) -> Option<NodeId> {
        let metrics = self.leadership.metrics();
        let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        let replication = metrics.replication.as_ref()?;
        voters
            .into_iter()
            .filter(|id| *id != self.id)
            .max_by_key(|id| replication.get(id).copied().flatten().map(|log_id| log_id.index))
    }

    /// Makes another voter (`to`, or the most caught-up one) the leader. Meanwhile every
    /// proposal not yet in the log is refused with `ProposeError::HandingOver` (certainly not
    /// applied; the server sends it to the next leader), and entries already proposed finish
    /// first. Returns the new leader's id once this member follows it, or an error after
    /// `timeout`, in which case this member may still lead and takes proposals again.
    pub async fn hand_over_leadership(
        &self,
        to: Option<NodeId>,
        timeout: Duration,
    ) -> Result<NodeId, HandoverError> {
        if self.leadership.standing() != Standing::Leader {
            return Err(HandoverError::NotLeader);
        }
        let to = match to {
            Some(id) => id,
            None => self
                .best_successor()
                .ok_or_else(|| HandoverError::NoSuccessor("this member is the only voter".into()))?,
        };
        let metrics = self.leadership.metrics();
        let is_voter = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == to);
        let addr = address_of(&metrics, to).filter(|_| is_voter && to != self.id);
        let addr = addr.ok_or_else(|| HandoverError::NoSuccessor(format!("{to} is not another voter")))?;

        // The successor campaigns without a pre-vote and this member will vote for it, so the
        // read lease (`lease.rs`) no longer holds from here on.
        self.lease
            .suspend_until(std::time::Instant::now() + Duration::from_secs(24 * 3600));
        self.handing_over.store(true, Ordering::SeqCst);
        let _paused = Paused(self);
        let deadline = Instant::now() + timeout;
        self.wait_until_caught_up(to, deadline).await?;
        self.network
            .campaign(to, &addr)
            .await
            .map_err(|e| HandoverError::TimedOut(format!("asking {to} to campaign: {e}")))?;
        self.wait_for_other_leader(deadline).await
    }

    /// Waits until nothing is queued or unapplied here and `to` holds every entry.
    async fn wait_until_caught_up(&self, to: NodeId, deadline: Instant) -> Result<(), HandoverError> {
        loop {
            let metrics = self.leadership.metrics();
            let last = metrics.last_log_index;
            let applied = metrics.last_applied.map(|id| id.index);
            let matched = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&to).copied().flatten())
                .map(|id| id.index);
            if self.proposer_idle() && applied == last && matched == last {
                return Ok(());
            }
            if metrics.current_leader != Some(self.id) {
                return Err(HandoverError::NotLeader);
            }
            if Instant::now() >= deadline {
                return Err(HandoverError::TimedOut(format!(
                    "{to} did not catch up (matched {matched:?} of {last:?})"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_for_other_leader(&self, deadline: Instant) -> Result<NodeId, HandoverError> {
        let mut metrics = self.raft.metrics();
        let me = self.id;
        let elected = metrics.wait_for(|m| m.current_leader.is_some_and(|leader| leader != me));
        match tokio::time::timeout_at(deadline, elected).await {
            Ok(Ok(m)) => Ok(m.current_leader.expect("waited for a leader")),
            _ => Err(HandoverError::TimedOut("no other member was elected".into())),
        }
    }
}
