//! Elections, all of them: openraft's own election timer is off (`enable_elect = false`),
//! and this watch decides when a member campaigns.
//!
//! A voter that has not heard from a leader for its patience (the election timeout plus a
//! random 10–33 %, so that members rarely campaign together) first runs a pre-vote
//! ([`crate::pre_vote`]): it judges its own request as any voter would, then asks the other
//! voters, and raises the term only with a majority's yes. A member that cannot win (a
//! restarted or wiped member, one that alone lost the leader, a member in a minority
//! partition) therefore never disturbs the cluster. After an attempt, won or lost, it waits
//! another patience before the next, which also retries failed elections.

use crate::NodeId;
use crate::leadership::address_of;
use crate::peer_client::PeerNetwork;
use crate::pre_vote::{Judge, PreVoteRequest, is_quorum};
use openraft::{BasicNode, RaftMetrics, ServerState};
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// When this node last heard from a leader it accepts (or granted a vote), written by the
/// peer endpoints and read by the watch.
pub(crate) struct LeaderContact {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl LeaderContact {
    /// A node that just started counts as having heard from a leader just now: it gives a
    /// running cluster one lease to reach it before campaigning.
    pub(crate) fn new() -> Self {
        LeaderContact {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn silent_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// True if this node may campaign: a voter that follows (or tries to become) a leader. A
/// learner never campaigns, and a leader has nothing to win.
fn may_campaign(metrics: &RaftMetrics<NodeId, BasicNode>, id: NodeId) -> bool {
    matches!(metrics.state, ServerState::Follower | ServerState::Candidate)
        && metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|voter| voter == id)
}

/// How long a silence must last before campaigning: the timeout plus 10–33 % of it.
fn patience(timeout: Duration, rng: &mut impl Rng) -> Duration {
    timeout + timeout * rng.random_range(10..=33) / 100
}

/// Watches the leader's silence until Raft stops; `network` asks the other voters.
pub(crate) fn spawn(judge: Arc<Judge>, network: PeerNetwork) -> JoinHandle<()> {
    tokio::spawn(async move {
        let timeout = judge.patience.suspect_after;
        // Fine enough that the check adds little to the random wait beyond the timeout.
        let check_every = (timeout / 16).max(Duration::from_millis(1));
        let mut wait = patience(timeout, &mut rand::rng());
        let mut last_attempt = Instant::now();
        // The term of the last election this watch started: another starts only once the core
        // has moved past it. A core stuck on a stalled disk takes in election triggers without
        // handling them; handled together later, a pile of them raised the term by six at once.
        let mut started_term = 0;
        loop {
            tokio::time::sleep(check_every).await;
            let silent = judge.contact.silent_for();
            let (campaigns, term) = {
                let metrics = judge.raft.metrics();
                let metrics = metrics.borrow();
                (may_campaign(&metrics, judge.id), metrics.current_term)
            };
            if silent < wait || last_attempt.elapsed() < wait || !campaigns || term < started_term {
                continue;
            }
            last_attempt = Instant::now();
            wait = patience(timeout, &mut rand::rng());
            let granted_before = judge.granted_to_others.load(Ordering::SeqCst);
            let request = judge.own_request().await;
            if let Err(refusal) = judge.judge(&request).await {
                tracing::debug!(%refusal, "not campaigning");
                continue;
            }
            let metrics = judge.raft.metrics().borrow().clone();
            let granted = ask_voters(&network, &metrics, &request, judge.patience.suspect_after).await;
            if !is_quorum(&metrics, &granted) {
                tracing::info!(term = request.term, ?granted, "pre-vote lost: not campaigning");
                continue;
            }
            // Another member's pre-vote was granted here meanwhile: it noticed the silence at
            // the same moment. Both campaigning would split the votes (they did, every time,
            // when a partition silenced the leader for both followers at once), so this one
            // yields; the random wait before its next try breaks the tie if the other fails.
            if judge.granted_to_others.load(Ordering::SeqCst) != granted_before {
                tracing::info!(
                    term = request.term,
                    "pre-vote won, but another member's too: yielding"
                );
                wait += timeout * rand::rng().random_range(0..=100) / 100;
                continue;
            }
            tracing::info!(
                silent_ms = silent.as_millis() as u64,
                term = request.term,
                ?granted,
                "pre-vote won: campaigning"
            );
            metrics::counter!("hakv_raft_campaigns_total").increment(1);
            started_term = request.term;
            if judge.raft.trigger().elect().await.is_err() {
                return; // Raft has stopped.
            }
        }
    })
}

/// Sends `request` to every other voter at once; returns who said yes, this member included.
async fn ask_voters(
    network: &PeerNetwork,
    metrics: &RaftMetrics<NodeId, BasicNode>,
    request: &PreVoteRequest,
    timeout: Duration,
) -> BTreeSet<NodeId> {
    let mut asks = tokio::task::JoinSet::new();
    for voter in metrics.membership_config.membership().voter_ids() {
        let Some(addr) = address_of(metrics, voter).filter(|_| voter != request.candidate) else {
            continue;
        };
        let (network, request) = (network.clone(), request.clone());
        asks.spawn(async move {
            let answer = tokio::time::timeout(timeout, network.pre_vote(voter, &addr, &request)).await;
            match answer {
                Ok(Ok(response)) => {
                    if let Some(reason) = &response.reason {
                        tracing::debug!(voter, reason, "pre-vote refused");
                    }
                    response.granted.then_some(voter)
                }
                _ => None,
            }
        });
    }
    let mut granted = BTreeSet::from([request.candidate]);
    while let Some(answer) = asks.join_next().await {
        granted.extend(answer.ok().flatten());
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{Membership, StoredMembership, Vote};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use std::collections::{BTreeMap, BTreeSet};

    fn metrics(state: ServerState, committed: bool, voters: &[NodeId]) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(1);
        m.state = state;
        m.vote = if committed {
            Vote::new_committed(4, 2)
        } else {
            Vote::new(4, 2)
        };
        let nodes: BTreeMap<NodeId, BasicNode> = [1, 2, 3, 4].map(|i| (i, BasicNode::new(""))).into();
        let voters: BTreeSet<NodeId> = voters.iter().copied().collect();
        m.membership_config = Arc::new(StoredMembership::new(None, Membership::new(vec![voters], nodes)));
        m
    }

    #[test]
    fn only_a_voter_that_does_not_lead_campaigns() {
        for state in [ServerState::Follower, ServerState::Candidate] {
            assert!(may_campaign(&metrics(state, true, &[1, 2, 3]), 1), "{state:?}");
        }
        // A new cluster's member campaigns too (openraft's own timer is off).
        assert!(may_campaign(
            &metrics(ServerState::Follower, false, &[1, 2, 3]),
            1
        ));
        // Not a voter (a learner, or a member being removed).
        assert!(!may_campaign(
            &metrics(ServerState::Follower, true, &[2, 3, 4]),
            1
        ));
        for state in [ServerState::Leader, ServerState::Learner, ServerState::Shutdown] {
            assert!(!may_campaign(&metrics(state, true, &[1, 2, 3]), 1), "{state:?}");
        }
    }

    #[test]
    fn patience_is_the_lease_plus_a_tenth_to_a_third() {
        let lease = Duration::from_millis(150);
        let mut rng = SmallRng::seed_from_u64(7);
        let waits: Vec<Duration> = (0..1000).map(|_| patience(lease, &mut rng)).collect();
        assert!(
            waits
                .iter()
                .all(|w| (Duration::from_millis(165)..=Duration::from_micros(199_500)).contains(w))
        );
        // Random, so two followers rarely campaign together.
        assert!(waits.iter().any(|w| *w < Duration::from_millis(175)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(190)));
    }

    #[test]
    fn contact_measures_silence_since_the_latest_touch() {
        let contact = LeaderContact::new();
        std::thread::sleep(Duration::from_millis(50));
        let before = contact.silent_for();
        assert!(before >= Duration::from_millis(50));
        contact.touch();
        assert!(contact.silent_for() < before);
    }
}
