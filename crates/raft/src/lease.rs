//! Leader leases for linearizable reads: a leader that a majority of every voter configuration
//! acknowledged recently serves reads without a heartbeat round.
//!
//! Why it is safe. An openraft 0.9 follower refuses every vote request for `leader_lease`
//! (the election timeout's upper bound) after it last heard from its leader, by its own
//! monotonic clock. So when a majority acknowledged an append this leader *sent* at `t`, no
//! other member can collect a majority of votes before `t + leader_lease` — except through
//! this leader's own vote, which hakv never gives away while leading: a candidate must first
//! win a pre-vote, and a leader refuses every pre-vote (`pre_vote.rs`); only a handover
//! campaigns without one, and leases are off from the start of a handover until a lease
//! period after it ends. Until then, the state this leader has applied holds every write
//! acknowledged anywhere, provided it has applied an entry of its own term (which carries
//! every entry committed before it). A read is then linearized at the moment the lease was
//! checked; a pause after that only delays the answer.
//!
//! The assumption (docs/cluster.md): no member's monotonic clock runs more than 1.5 times as
//! fast as another's. The leader relies on only 60 % of the followers' lease
//! ([`DRIFT_MARGIN`]), which covers that with room to spare.

use crate::NodeId;
use openraft::{BasicNode, RaftMetrics, ServerState};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Share of the followers' lease the leader does not rely on (clock rate differences, and
/// the time between a follower's receipt and its acknowledgement counted against the leader).
pub const DRIFT_MARGIN: f64 = 0.4;

pub struct Lease {
    /// How long after sending an acknowledged append the leader may rely on it.
    duration: Duration,
    enabled: bool,
    /// One lock for both, taken once per leader read.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per follower: the term and send time of the latest append it accepted.
    acks: HashMap<NodeId, (u64, Instant)>,
    /// Leases are off until then (set by a handover).
    off_until: Option<Instant>,
}

impl Lease {
    /// `follower_lease`: how long followers refuse votes after hearing from their leader.
    pub fn new(follower_lease: Duration, enabled: bool) -> Lease {
        Lease {
            duration: follower_lease.mul_f64(1.0 - DRIFT_MARGIN),
            enabled,
            state: Mutex::default(),
        }
    }

    /// `target` accepted (did not refuse for a higher vote) an append of `term` sent at `sent`.
    pub fn acknowledged(&self, target: NodeId, term: u64, sent: Instant) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().expect("lease lock");
        let ack = state.acks.entry(target).or_insert((term, sent));
        if (term, sent) > *ack {
            *ack = (term, sent);
        }
    }

    /// Leases off from now until a lease period after `until` (a handover in progress
    /// passes a time far enough ahead, and ends by passing its end).
    pub fn suspend_until(&self, until: Instant) {
        self.state.lock().expect("lease lock").off_until = Some(until + self.duration);
    }

    /// True if this node, leading in `metrics`, holds a lease at `now`: in every voter
    /// configuration (two during a membership change), a majority counting itself
    /// acknowledged an append of its current term sent within the lease.
    pub fn holds(&self, metrics: &RaftMetrics<NodeId, BasicNode>, now: Instant) -> bool {
        if !self.enabled || metrics.state != ServerState::Leader {
            return false;
        }
        let state = self.state.lock().expect("lease lock");
        if state.off_until.is_some_and(|until| now < until) {
            return false;
        }
        let term = metrics.current_term;
        let fresh = |voter: &NodeId| {
            *voter == metrics.id
                || state.acks.get(voter).is_some_and(|(t, sent)| {
                    *t == term && now.saturating_duration_since(*sent) < self.duration
                })
        };
        let configs = metrics.membership_config.membership().get_joint_config();
        !configs.is_empty()
            && configs
                .iter()
                .all(|voters| voters.iter().filter(|v| fresh(v)).count() * 2 > voters.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{Membership, StoredMembership};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    fn leader(term: u64, configs: Vec<BTreeSet<NodeId>>) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(1);
        m.state = ServerState::Leader;
        m.current_term = term;
        let nodes: BTreeMap<NodeId, BasicNode> = configs
            .iter()
            .flatten()
            .map(|id| (*id, BasicNode::new(format!("n{id}"))))
            .collect();
        m.membership_config = Arc::new(StoredMembership::new(None, Membership::new(configs, nodes)));
        m
    }

    #[test]
    fn a_lease_needs_a_recent_majority_of_this_term_in_every_configuration() {
        let lease = Lease::new(Duration::from_millis(150), true);
        let t0 = Instant::now();
        let three = leader(5, vec![BTreeSet::from([1, 2, 3])]);
        assert!(!lease.holds(&three, t0), "no acknowledgement yet");
        lease.acknowledged(2, 4, t0);
        assert!(!lease.holds(&three, t0), "an acknowledgement of an older term");
        lease.acknowledged(2, 5, t0);
        assert!(lease.holds(&three, t0 + Duration::from_millis(89)));
        assert!(
            !lease.holds(&three, t0 + Duration::from_millis(91)),
            "only 60 % of the followers' lease is relied on"
        );
        let mut follower = three.clone();
        follower.state = ServerState::Follower;
        assert!(!lease.holds(&follower, t0));

        // A membership change to {1, 4, 5}: the new configuration needs its own majority.
        let joint = leader(5, vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([1, 4, 5])]);
        assert!(!lease.holds(&joint, t0));
        lease.acknowledged(4, 5, t0);
        assert!(lease.holds(&joint, t0));

        let off = Lease::new(Duration::from_millis(150), false);
        off.acknowledged(2, 5, t0);
        assert!(!off.holds(&three, t0), "leases turned off");
    }

    #[test]
    fn a_handover_suspends_leases_until_a_lease_period_after_it_ends() {
        let lease = Lease::new(Duration::from_millis(150), true);
        let three = leader(5, vec![BTreeSet::from([1, 2, 3])]);
        let t0 = Instant::now();
        lease.acknowledged(2, 5, t0 + Duration::from_millis(500));
        lease.suspend_until(t0 + Duration::from_millis(400));
        assert!(!lease.holds(&three, t0 + Duration::from_millis(489)));
        assert!(lease.holds(&three, t0 + Duration::from_millis(491)));
    }
}
