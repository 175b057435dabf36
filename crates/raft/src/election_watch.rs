//! Prompt elections: a follower that stops hearing from its leader campaigns as soon as the
//! leader's lease has run out, instead of waiting out the lease *and then* a whole election
//! timeout as openraft 0.9 does on its own.
//!
//! Why this is safe: openraft's voters refuse every vote request for one lease (the longest
//! election timeout) after they last heard from a leader, so no campaign can unseat a leader
//! that is still heard. Campaigning earlier than openraft would therefore not let a live
//! leader be deposed any sooner; it only stops the cluster from sitting idle for an extra
//! 0.5–1 election timeouts after the leader is gone. The wait beyond the lease is random
//! (10–33 % of it) so that the surviving followers rarely campaign at the same moment, and a
//! follower campaigns once per silence: if that election fails, openraft's own candidate
//! timer retries.

use crate::{NodeId, Raft};
use openraft::{BasicNode, RaftMetrics, ServerState};
use rand::Rng;
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

    fn silent_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// True if this node should start an election once the leader is silent: it is a voter that
/// follows an elected leader. A candidate has its own retry timer, a learner never campaigns,
/// and a node that never saw a leader elected already campaigns after one election timeout.
fn follows_an_elected_leader(metrics: &RaftMetrics<NodeId, BasicNode>, id: NodeId) -> bool {
    metrics.state == ServerState::Follower
        && metrics.vote.committed
        && metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|voter| voter == id)
}

/// How long a silence must last before campaigning: the lease plus 10–33 % of it.
fn patience(lease: Duration, rng: &mut impl Rng) -> Duration {
    lease + lease * rng.random_range(10..=33) / 100
}

/// Watches the leader's silence until Raft stops. `lease` is openraft's leader lease, its
/// longest election timeout.
pub(crate) fn spawn(raft: Raft, id: NodeId, contact: Arc<LeaderContact>, lease: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Fine enough that the check adds little to the random wait beyond the lease.
        let check_every = (lease / 16).max(Duration::from_millis(1));
        let mut wait = patience(lease, &mut rand::rng());
        loop {
            tokio::time::sleep(check_every).await;
            if contact.silent_for() < wait || !follows_an_elected_leader(&raft.metrics().borrow(), id) {
                continue;
            }
            tracing::info!(
                silent_ms = contact.silent_for().as_millis() as u64,
                "leader silent past its lease: campaigning"
            );
            contact.touch();
            wait = patience(lease, &mut rand::rng());
            if raft.trigger().elect().await.is_err() {
                return; // Raft has stopped.
            }
        }
    })
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
    fn only_a_voter_following_an_elected_leader_campaigns() {
        assert!(follows_an_elected_leader(
            &metrics(ServerState::Follower, true, &[1, 2, 3]),
            1
        ));
        // Never saw an election succeed: openraft's short timer already applies.
        assert!(!follows_an_elected_leader(
            &metrics(ServerState::Follower, false, &[1, 2, 3]),
            1
        ));
        // Not a voter (a learner, or a member being removed).
        assert!(!follows_an_elected_leader(
            &metrics(ServerState::Follower, true, &[2, 3, 4]),
            1
        ));
        for state in [
            ServerState::Leader,
            ServerState::Candidate,
            ServerState::Learner,
            ServerState::Shutdown,
        ] {
            assert!(
                !follows_an_elected_leader(&metrics(state, true, &[1, 2, 3]), 1),
                "{state:?}"
            );
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
