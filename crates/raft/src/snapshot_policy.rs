//! When to take a checkpoint (the snapshot of `snapshot_file`, after which the log may be
//! purged): after `snapshot_every` entries, as openraft would, *and* only once the log has
//! grown by a quarter of what a snapshot of the state weighs since. A checkpoint itself costs
//! one fsync; the second rule is about the log kept behind it. A member that was down for a
//! while catches up from the log as long as the log still reaches back to where it stopped,
//! and otherwise needs the whole state sent; with this rule the log grows by up to about a
//! quarter of the state's size on disk between checkpoints (compressed: about 120 MB of log,
//! some 20 s of full write load, for the 1 GB soak's 470 MB of tables), and its disk stays in
//! proportion to the state's.
//!
//! Right after a checkpoint the log reaches back only the entries openraft keeps (1000 by
//! default). So a due checkpoint is held back while the leader sends a snapshot (the member
//! resumes from the log after the snapshot's position once it has installed it) and while a
//! member that is making progress is further behind than the purge would leave: otherwise a
//! member that took half a minute to receive and install the state under client load was cut
//! off again and sent a second snapshot (docs/benchmarks.md, "Under client load, a second
//! snapshot"). A member counts as making progress if its position moved within
//! [`PROGRESS_WITHIN`], so a dead member holds nothing; and a checkpoint is held back only
//! until the log since the last one has grown by the state's whole size (at least
//! [`HOLD_BACK_FLOOR`]), so the log stays bounded even behind a member slower than the writes.
//!
//! Builds of snapshots that copied the state took turns among followers, waited for transfers
//! and for disk room; a checkpoint writes a few hundred bytes, so it needs none of that, and
//! a disk running low does not hold it back (the purge after it frees the log's space).

use crate::peer_client::PeerNetwork;
use crate::{LogStore, NodeId, Raft};
use hakv_store::StateMachine;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const CHECK_EVERY: Duration = Duration::from_millis(250);
/// A member whose position moved within this long is catching up, not gone.
const PROGRESS_WITHIN: Duration = Duration::from_secs(5);
/// A checkpoint is held back for catching-up members until at least this much log was
/// written since the last one (more, the state's size, for a larger state).
const HOLD_BACK_FLOOR: u64 = 64 << 20;

/// Whether to take a checkpoint now.
fn due(entries_since: u64, every: u64, log_bytes_since: u64, state_bytes: u64) -> bool {
    entries_since >= every && log_bytes_since >= state_bytes / 4
}

/// Whether a due checkpoint waits: a member is receiving the state or catching up from the log
/// the purge would cut, and the log written since the last checkpoint is still within bounds.
fn held_back(members_need_the_log: bool, log_bytes_since: u64, state_bytes: u64) -> bool {
    members_need_the_log && log_bytes_since < state_bytes.max(HOLD_BACK_FLOOR)
}

/// Where each member the leader replicates to stands, and when that last moved.
#[derive(Default)]
struct Positions(HashMap<NodeId, (u64, Instant)>);

impl Positions {
    /// Records the leader's view of the members' matched positions (`None` off the leader).
    fn observe(&mut self, matched: Option<&BTreeMap<NodeId, Option<openraft::LogId<NodeId>>>>, now: Instant) {
        let Some(matched) = matched else {
            return self.0.clear();
        };
        self.0.retain(|id, _| matched.contains_key(id));
        for (id, log_id) in matched {
            let next = log_id.map(|id| id.index + 1).unwrap_or(0);
            let entry = self.0.entry(*id).or_insert((next, now));
            if entry.0 != next {
                *entry = (next, now);
            }
        }
    }

    /// Whether a member that is making progress still needs entries below `purge_to`.
    fn progressing_below(&self, purge_to: u64, now: Instant) -> bool {
        self.0
            .values()
            .any(|(next, moved)| *next < purge_to && now.duration_since(*moved) < PROGRESS_WITHIN)
    }
}

/// Triggers checkpoints by the policy above until Raft stops. What a snapshot of `state`
/// weighs is taken as its sorted tables' size on disk; `kept` is how many entries the purge
/// after a checkpoint leaves.
pub(crate) fn spawn(
    raft: Raft,
    log: LogStore,
    state: Arc<StateMachine>,
    network: PeerNetwork,
    every: u64,
    kept: u64,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut bytes_at_last = 0;
        let mut positions = Positions::default();
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let now = Instant::now();
            let (applied, snapshot) = {
                let metrics = raft.metrics();
                let metrics = metrics.borrow();
                positions.observe(metrics.replication.as_ref(), now);
                (
                    metrics.last_applied.map(|id| id.index + 1).unwrap_or(0),
                    metrics.snapshot.map(|id| id.index + 1).unwrap_or(0),
                )
            };
            let log_bytes_since = log.appended_bytes() - bytes_at_last;
            let state_bytes = state.table_bytes();
            if !due(
                applied.saturating_sub(snapshot),
                every,
                log_bytes_since,
                state_bytes,
            ) {
                continue;
            }
            let members_need_the_log = network.is_sending_a_snapshot()
                || positions.progressing_below(applied.saturating_sub(kept), now);
            if held_back(members_need_the_log, log_bytes_since, state_bytes) {
                continue;
            }
            bytes_at_last += log_bytes_since;
            if raft.trigger().snapshot().await.is_err() {
                return; // Raft has stopped.
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_needs_the_entries_and_a_quarter_of_the_state_in_new_log() {
        assert!(due(10_000, 10_000, 300, 1_000));
        assert!(!due(9_999, 10_000, 300, 1_000), "too few entries");
        assert!(
            !due(10_000, 10_000, 249, 1_000),
            "too little new log for that state"
        );
        assert!(due(10_000, 10_000, 0, 0), "the first checkpoint");
    }

    #[test]
    fn a_checkpoint_waits_for_members_that_need_the_log_within_bounds() {
        assert!(held_back(true, 1 << 20, 1 << 30));
        assert!(!held_back(false, 1 << 20, 1 << 30), "nobody needs the log");
        assert!(
            !held_back(true, 1 << 30, 1 << 30),
            "the log has grown by the state's size"
        );
        assert!(held_back(true, 1 << 20, 0), "a small state waits up to the floor");
        assert!(!held_back(true, HOLD_BACK_FLOOR, 0));
    }

    fn matched(positions: &[(NodeId, Option<u64>)]) -> BTreeMap<NodeId, Option<openraft::LogId<NodeId>>> {
        positions
            .iter()
            .map(|(id, index)| {
                (
                    *id,
                    index.map(|i| openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), i)),
                )
            })
            .collect()
    }

    #[test]
    fn only_a_member_that_moves_is_waited_for() {
        let start = Instant::now();
        let mut positions = Positions::default();
        positions.observe(Some(&matched(&[(2, Some(99)), (3, None)])), start);
        assert!(
            positions.progressing_below(100, start),
            "member 3 needs everything"
        );
        assert!(
            !positions.progressing_below(0, start),
            "nobody needs what is below 0"
        );
        let later = start + PROGRESS_WITHIN;
        positions.observe(Some(&matched(&[(2, Some(99)), (3, None)])), later);
        assert!(
            !positions.progressing_below(1_000, later),
            "neither moved: both are gone"
        );
        positions.observe(Some(&matched(&[(2, Some(99)), (3, Some(5))])), later);
        assert!(positions.progressing_below(100, later), "member 3 moved");
        assert!(
            !positions.progressing_below(6, later),
            "member 3 is past the purge"
        );
        positions.observe(None, later);
        assert!(
            !positions.progressing_below(1_000, later),
            "off the leader nothing is known"
        );
    }
}
