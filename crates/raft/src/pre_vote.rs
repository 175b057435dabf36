//! Pre-Vote (Raft thesis §9.6), which openraft 0.9 lacks: before a member raises the term it
//! asks the voters whether they *would* vote for it, and campaigns only with a majority's yes.
//!
//! Why: in openraft 0.9 a failed campaign still leaves the candidate at a higher term, and the
//! leader steps down as soon as that member answers its next append with the higher vote. So
//! one member that merely suspects the leader (a slow fsync, a starved core, a restart, a
//! wiped disk) deposed a healthy leader. With Pre-Vote a member that cannot win never raises
//! the term.
//!
//! A voter says yes only when it has lost the leader too: it is not the leader itself, the
//! candidate's log is at least as up to date as its own, the candidate's next term would beat
//! its vote, and it has not heard from a leader for the election timeout *and* either the
//! leader's host does not complete a TCP handshake (refused: its process is gone; no answer
//! in time: the network to it is cut or its host is down), or the silence has lasted the
//! stall timeout. A leader whose host still completes handshakes may only be slow (an fsync
//! stall, a busy core, a paused process: the kernel answers for all of them), so it is given
//! the stall timeout. So a crash or a partition is replaced in about one election timeout,
//! while a stall is tolerated for the stall timeout.

use crate::election_watch::LeaderContact;
use crate::leadership::address_of;
use crate::{LogId, LogStore, NodeId, Raft};
use openraft::{BasicNode, RaftMetrics, ServerState, Vote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// "Would you vote for `candidate` at `term`, whose log ends at `last_log_id`?"
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PreVoteRequest {
    pub candidate: NodeId,
    pub term: u64,
    pub last_log_id: Option<LogId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PreVoteResponse {
    pub granted: bool,
    /// Why not, for the logs.
    pub reason: Option<String>,
}

/// Why a voter would not vote now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("this member leads")]
    Leading,
    #[error("this member started with an empty log and is catching up: it does not vote yet")]
    CatchingUp,
    #[error("the candidate's log ends before this member's")]
    LogBehind,
    #[error("this member's vote is already at or past the candidate's term")]
    TermTooLow,
    #[error("a leader was heard {silent_ms} ms ago")]
    LeaderHeard { silent_ms: u64 },
    #[error("the leader still accepts connections; waiting out the stall timeout")]
    LeaderMayBeSlow,
}

/// How long a silence must last before a leader is given up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    /// Without hearing from a leader for this long, a voter suspects it (election timeout).
    pub suspect_after: Duration,
    /// A leader whose port still accepts connections is given up only after this long.
    pub stalled_after: Duration,
    /// Longest wait for the leader's port to answer a connection attempt.
    pub probe_timeout: Duration,
}

/// What a member knows when it judges a pre-vote, its own included.
pub(crate) struct Judge {
    pub id: NodeId,
    pub raft: Raft,
    pub log: LogStore,
    pub contact: Arc<LeaderContact>,
    pub patience: Patience,
    /// Set while this member catches up after starting with an empty log (`crate::identity`):
    /// it votes only for a candidate with nothing beyond the initial membership.
    pub catching_up: Arc<AtomicBool>,
    /// Pre-votes granted to other members so far: a member that granted one while running
    /// its own yields instead of campaigning (see `election_watch`).
    pub granted_to_others: AtomicU64,
}

impl Judge {
    /// This member's own request for the next term.
    pub(crate) async fn own_request(&self) -> PreVoteRequest {
        let term = self.raft.metrics().borrow().current_term + 1;
        PreVoteRequest {
            candidate: self.id,
            term,
            last_log_id: self.last_log_id().await,
        }
    }

    /// The last log id this member holds (or the last purged one when the log is empty).
    pub(crate) async fn last_log_id(&self) -> Option<LogId> {
        let mut log = self.log.clone();
        use openraft::storage::RaftLogStorage;
        match log.get_log_state().await {
            Ok(state) => state.last_log_id,
            Err(e) => {
                tracing::warn!(error = %e, "reading the last log id for a pre-vote");
                // Claim nothing: a candidate with an unknown log must not look up to date.
                None
            }
        }
    }

    /// True while this member catches up after starting with an empty log.
    pub(crate) fn is_catching_up(&self) -> bool {
        self.catching_up.load(Ordering::SeqCst)
    }

    /// Whether a member that is catching up may vote for a candidate whose log ends at
    /// `candidate_last`: only when the candidate holds nothing beyond the initial membership
    /// (index 0), which is how a new cluster forms; then nothing committed can be missing.
    pub(crate) fn may_vote_for(&self, candidate_last: Option<&LogId>) -> bool {
        !self.is_catching_up() || candidate_last.is_none_or(|id| id.index == 0)
    }

    /// Whether this member would vote for `request` now.
    pub(crate) async fn judge(&self, request: &PreVoteRequest) -> Result<(), Refusal> {
        if !self.may_vote_for(request.last_log_id.as_ref()) {
            return Err(Refusal::CatchingUp);
        }
        let metrics = self.raft.metrics().borrow().clone();
        // Its own request already carries its log's end: read the log (the last entry is
        // decoded whole) only for another member's.
        let own_log = match request.candidate == self.id {
            true => request.last_log_id,
            false => self.last_log_id().await,
        };
        let silent = self.contact.silent_for();
        let verdict = judge_logs_and_terms(&metrics, request, own_log.as_ref())
            .and_then(|()| judge_silence(silent, metrics.current_leader, &self.patience));
        let verdict = match verdict {
            Err(Refusal::LeaderMayBeSlow) => {
                let leader = metrics.current_leader.expect("only with a known leader");
                match address_of(&metrics, leader) {
                    Some(addr) if unreachable(&addr, self.patience.probe_timeout).await => Ok(()),
                    _ => Err(Refusal::LeaderMayBeSlow),
                }
            }
            other => other,
        };
        if verdict.is_ok() && request.candidate != self.id {
            self.granted_to_others.fetch_add(1, Ordering::SeqCst);
        }
        verdict
    }
}

/// The parts of a vote decision that do not depend on time: leadership, logs and terms.
fn judge_logs_and_terms(
    metrics: &RaftMetrics<NodeId, BasicNode>,
    request: &PreVoteRequest,
    own_log: Option<&LogId>,
) -> Result<(), Refusal> {
    if metrics.state == ServerState::Leader {
        return Err(Refusal::Leading);
    }
    if request.last_log_id.as_ref() < own_log {
        return Err(Refusal::LogBehind);
    }
    let proposed = Vote::new(request.term, request.candidate);
    // Votes are only partially ordered: openraft grants a vote that is >= its own.
    let grantable = matches!(
        proposed.partial_cmp(&metrics.vote),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    );
    if !grantable {
        return Err(Refusal::TermTooLow);
    }
    Ok(())
}

/// Whether a silence of `silent` is long enough to give up `leader`; `LeaderMayBeSlow` means
/// "only if its port refuses connections".
fn judge_silence(silent: Duration, leader: Option<NodeId>, patience: &Patience) -> Result<(), Refusal> {
    if silent < patience.suspect_after {
        return Err(Refusal::LeaderHeard {
            silent_ms: silent.as_millis() as u64,
        });
    }
    if leader.is_none() || silent >= patience.stalled_after {
        return Ok(());
    }
    Err(Refusal::LeaderMayBeSlow)
}

/// True when `addr` does not complete a TCP handshake within `timeout`: refused (nothing
/// listens: the process is gone) or unanswered (the network to it is cut, its host is down,
/// or its accept queue is full). A slow, stalled or paused process still completes
/// handshakes (its kernel does that), so it is not unreachable.
async fn unreachable(addr: &str, timeout: Duration) -> bool {
    !matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// True if `granted` holds a majority of every configuration of `metrics`' membership (both
/// halves of a joint configuration).
pub(crate) fn is_quorum(metrics: &RaftMetrics<NodeId, BasicNode>, granted: &BTreeSet<NodeId>) -> bool {
    let membership = metrics.membership_config.membership();
    membership
        .get_joint_config()
        .iter()
        .all(|voters| voters.intersection(granted).count() * 2 > voters.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Membership, StoredMembership};
    use std::collections::BTreeMap;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn follower(term: u64) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(2);
        m.state = ServerState::Follower;
        m.current_term = term;
        m.vote = Vote::new_committed(term, 1);
        m.current_leader = Some(1);
        m
    }

    fn request(term: u64, last: Option<LogId>) -> PreVoteRequest {
        PreVoteRequest {
            candidate: 3,
            term,
            last_log_id: last,
        }
    }

    #[test]
    fn a_leader_a_longer_log_or_an_old_term_refuse() {
        let own = log_id(4, 10);
        let metrics = follower(4);
        assert_eq!(
            judge_logs_and_terms(&metrics, &request(5, Some(own)), Some(&own)),
            Ok(())
        );
        assert_eq!(
            judge_logs_and_terms(&metrics, &request(5, Some(log_id(4, 9))), Some(&own)),
            Err(Refusal::LogBehind)
        );
        // A wiped member's empty log never wins a vote from a member that has entries.
        assert_eq!(
            judge_logs_and_terms(&metrics, &request(5, None), Some(&own)),
            Err(Refusal::LogBehind)
        );
        assert_eq!(
            judge_logs_and_terms(&metrics, &request(3, Some(own)), Some(&own)),
            Err(Refusal::TermTooLow)
        );
        let mut leader = follower(4);
        leader.state = ServerState::Leader;
        assert_eq!(
            judge_logs_and_terms(&leader, &request(5, Some(own)), Some(&own)),
            Err(Refusal::Leading)
        );
    }

    #[test]
    fn silence_must_outlast_the_election_timeout_and_a_live_port_the_stall_timeout() {
        let patience = Patience {
            suspect_after: Duration::from_millis(150),
            stalled_after: Duration::from_millis(1000),
            probe_timeout: Duration::from_millis(50),
        };
        let ms = Duration::from_millis;
        assert_eq!(
            judge_silence(ms(100), Some(1), &patience),
            Err(Refusal::LeaderHeard { silent_ms: 100 })
        );
        assert_eq!(
            judge_silence(ms(200), Some(1), &patience),
            Err(Refusal::LeaderMayBeSlow)
        );
        assert_eq!(judge_silence(ms(1000), Some(1), &patience), Ok(()));
        // No leader known (a new cluster, or after a failed election): the short wait only.
        assert_eq!(judge_silence(ms(200), None, &patience), Ok(()));
    }

    #[tokio::test]
    async fn a_handshake_refused_or_unanswered_counts_as_an_unreachable_leader() {
        // Nobody accepts: the kernel still completes handshakes until the queue is full.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert!(!unreachable(&addr, Duration::from_secs(1)).await);
        // A full accept queue drops handshakes, as a cut network does.
        let mut held = Vec::new();
        let connect =
            || tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(&addr));
        while let Ok(Ok(stream)) = connect().await {
            held.push(stream);
            assert!(held.len() < 64, "the accept queue never filled");
        }
        assert!(
            unreachable(&addr, Duration::from_millis(200)).await,
            "a full queue"
        );
        drop(held);
        drop(listener);
        assert!(unreachable(&addr, Duration::from_secs(1)).await, "refused");
    }

    #[test]
    fn a_quorum_needs_a_majority_of_every_joint_half() {
        let nodes: BTreeMap<NodeId, BasicNode> = (1..=5).map(|i| (i, BasicNode::new(""))).collect();
        let mut m = follower(1);
        let joint = vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([3, 4, 5])];
        m.membership_config = Arc::new(StoredMembership::new(None, Membership::new(joint, nodes)));
        assert!(is_quorum(&m, &BTreeSet::from([2, 3, 4])));
        assert!(!is_quorum(&m, &BTreeSet::from([1, 2, 4])));
    }
}
