//! When to build a snapshot: after `snapshot_every` entries, as openraft would, *and* only once
//! the log has grown by a quarter of the last snapshot's size since. openraft 0.9 can only
//! count entries, so a snapshot (which rewrites the whole state) came as often on a 4 GB
//! state as on a small one, and its I/O grew with the data until it stalled the log's fsyncs
//! (docs/benchmarks.md, Large state). This way the snapshot I/O stays within about four times
//! the log's own, whatever the state's size, and the log behind a snapshot holds at most a
//! quarter of the state.
//!
//! A snapshot is also put off while the disk could not hold it (the last one's size, a quarter
//! more for growth, plus the reserve): a snapshot that fills the disk would stop every write.
//!
//! Followers take turns. Members hold the same log, so they all come due at nearly the same
//! index, and building at once cost the cluster a third of its throughput for the length of a
//! build (three 1 GB builds, 11–12 s, in the 10-minute soak: docs/benchmarks.md). The leader
//! builds as soon as it is due: when its stored snapshot was what a member that catches up
//! received, every second it waited was log that member replayed after it (making every
//! member wait for a turn doubled a wiped member's catch-up, measured). Such a member is now
//! sent the live state (`live_snapshot`), so the leader could take turns too; not measured
//! yet, so it has not changed. A follower starts a build
//! only at the start of its own slot of the wall clock (its first quarter: a build begins a
//! moment after it is triggered, once the state machine takes the command): slots are at
//! least twice as long as a build at the builder's pace, and follower k of n (by id, the
//! leader left out) owns every slot whose number is k modulo n. So no two followers build at
//! once, and the leader always has a follower that is not building to make a majority with.
//! Skewed clocks only make slots overlap, which costs what building at once cost before,
//! never correctness; and the wait is at most one round of slots. Snapshots that take less
//! than a second to build (under 96 MiB) do not wait for a slot: they cost too little to
//! matter.
//!
//! Such a long build is also put off while this node streams a snapshot to a member that
//! catches up (`snapshots_sending`): the leader's build fell on a transfer's first seconds
//! in one catch-up run and that window's writes had a p99 of 100 ms. The member is sent the
//! live state, so nothing waits for the build; the log grows a little longer meanwhile. The
//! wait has a bound ([`MAX_WAIT_FOR_TRANSFERS`]): transfers that never end (a member that
//! refuses every install and is sent the snapshot again and again) must not let the log grow
//! without end.

use crate::snapshot_file::BUILD_BYTES_PER_SECOND;
use crate::{LogStore, NodeId, Raft, SnapshotsSending};
use hakv_store::DiskSpace;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The longest a due build waits for the transfers in flight from this node.
const MAX_WAIT_FOR_TRANSFERS: Duration = Duration::from_secs(10 * 60);

/// Builds expected to take less than this start at once: only longer ones take turns.
const STAGGER_FROM_MS: u64 = 1_000;

/// Whether to build a snapshot now.
fn due(entries_since: u64, every: u64, log_bytes_since: u64, last_snapshot_bytes: u64) -> bool {
    entries_since >= every && log_bytes_since >= last_snapshot_bytes / 4
}

/// Whether a build of a snapshot of about `last_snapshot_bytes`, due and waiting for `waited`
/// so far, waits for the transfers in flight from this node to end: a long one does, up to
/// [`MAX_WAIT_FOR_TRANSFERS`]; one that takes under a second does not.
fn waits_for_transfers(last_snapshot_bytes: u64, sending: bool, waited: Duration) -> bool {
    sending && slot_ms(last_snapshot_bytes).is_some() && waited < MAX_WAIT_FOR_TRANSFERS
}

/// Whether the disk has room for a snapshot of about `last_snapshot_bytes` (plus growth)
/// above the reserve.
fn room_for(last_snapshot_bytes: u64, free: u64, reserve: u64) -> bool {
    free >= reserve + last_snapshot_bytes + last_snapshot_bytes / 4
}

/// Length of a build slot for a snapshot of about `last_snapshot_bytes`: twice as long as a
/// build at the builder's pace takes, rounded up to a power of two milliseconds so that
/// members whose snapshots differ by a little still agree on it.
/// `None`: small enough to build at once.
fn slot_ms(last_snapshot_bytes: u64) -> Option<u64> {
    let build_ms = last_snapshot_bytes.saturating_mul(1_000) / BUILD_BYTES_PER_SECOND;
    (build_ms >= STAGGER_FROM_MS).then(|| build_ms.saturating_mul(2).next_power_of_two())
}

/// Whether `now_ms` is in the first quarter of a slot owned by the member at `rank` among
/// `members`: a build started then ends within the slot.
fn my_slot(now_ms: u64, slot_ms: u64, rank: usize, members: usize) -> bool {
    let owner = (now_ms / slot_ms) % members as u64 == rank as u64;
    members <= 1 || (owner && now_ms % slot_ms < slot_ms / 4)
}

/// This member's rank (by id) among the followers and learners of the cluster, and how many
/// there are; `None` on the leader, which does not wait for a turn.
fn rank_among_followers(raft: &Raft) -> Option<(usize, usize)> {
    let metrics = raft.metrics();
    let metrics = metrics.borrow();
    if metrics.current_leader == Some(metrics.id) {
        return None;
    }
    let others = |id: &&NodeId| Some(**id) != metrics.current_leader;
    let ids: Vec<NodeId> = metrics.membership_config.nodes().map(|(id, _)| *id).collect();
    let rank = ids.iter().filter(others).filter(|id| **id < metrics.id).count();
    Some((rank, ids.iter().filter(others).count()))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Triggers snapshots by the policy above until Raft stops.
pub(crate) fn spawn(
    raft: Raft,
    log: LogStore,
    snapshot_bytes: Arc<AtomicU64>,
    every: u64,
    disk: Arc<DiskSpace>,
    sending: Arc<SnapshotsSending>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut bytes_at_last = 0;
        let mut put_off = false;
        // Since when a due build has waited for transfers to end.
        let mut waiting_since: Option<std::time::Instant> = None;
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let (applied, snapshot) = {
                let metrics = raft.metrics();
                let metrics = metrics.borrow();
                (
                    metrics.last_applied.map(|id| id.index + 1).unwrap_or(0),
                    metrics.snapshot.map(|id| id.index + 1).unwrap_or(0),
                )
            };
            let appended = log.appended_bytes();
            let last_snapshot = snapshot_bytes.load(Ordering::Relaxed);
            if !due(
                applied.saturating_sub(snapshot),
                every,
                appended - bytes_at_last,
                last_snapshot,
            ) {
                continue;
            }
            if disk.is_low() || !room_for(last_snapshot, disk.free_bytes(), disk.reserve_bytes()) {
                if !put_off {
                    tracing::warn!(
                        free = disk.free_bytes(),
                        last_snapshot,
                        "snapshot put off: the disk has no room for it; the log grows until space is freed"
                    );
                    put_off = true;
                }
                continue;
            }
            put_off = false;
            let waited = waiting_since
                .get_or_insert_with(std::time::Instant::now)
                .elapsed();
            if waits_for_transfers(last_snapshot, sending.any(), waited) {
                continue;
            }
            waiting_since = None;
            if let (Some(slot), Some((rank, followers))) =
                (slot_ms(last_snapshot), rank_among_followers(&raft))
                && !my_slot(unix_ms(), slot, rank, followers)
            {
                continue;
            }
            bytes_at_last = appended;
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
    fn a_snapshot_waits_for_room_for_itself_above_the_reserve() {
        assert!(room_for(800, 1_000 + 1_000, 1_000));
        assert!(!room_for(800, 1_000 + 999, 1_000));
        assert!(room_for(0, 1_000, 1_000));
    }

    #[test]
    fn a_slot_fits_a_build_and_members_take_turns() {
        assert_eq!(slot_ms(0), None, "the first snapshot");
        assert_eq!(
            slot_ms(BUILD_BYTES_PER_SECOND / 2),
            None,
            "half a second to build"
        );
        assert_eq!(slot_ms(BUILD_BYTES_PER_SECOND), Some(2_048));
        let one_gib = 1 << 30;
        let build_ms = one_gib * 1_000 / BUILD_BYTES_PER_SECOND;
        assert!(slot_ms(one_gib).unwrap() >= build_ms * 2);
        assert_eq!(
            slot_ms(one_gib),
            slot_ms(one_gib + (1 << 20)),
            "a little more data, same slot"
        );
        let slot = slot_ms(one_gib).unwrap();
        for now in [0, slot / 8, slot * 7, slot * 7 + slot / 4 - 1] {
            let owners: Vec<usize> = (0..3).filter(|rank| my_slot(now, slot, *rank, 3)).collect();
            assert_eq!(owners.len(), 1, "one member owns each slot");
        }
        assert!(my_slot(0, slot, 0, 3) && my_slot(slot, slot, 1, 3) && my_slot(slot * 5, slot, 2, 3));
        assert!(
            (0..3).all(|rank| !my_slot(slot / 4, slot, rank, 3)),
            "nobody starts late in a slot"
        );
        assert!(my_slot(123, slot, 0, 1), "a single member never waits");
    }

    #[test]
    fn a_long_build_waits_while_a_snapshot_is_sent() {
        let one_gib = 1 << 30;
        let a_while = Duration::from_secs(30);
        assert!(waits_for_transfers(one_gib, true, a_while));
        assert!(!waits_for_transfers(one_gib, false, a_while), "nothing in flight");
        assert!(
            !waits_for_transfers(BUILD_BYTES_PER_SECOND / 2, true, a_while),
            "a build of half a second does not wait"
        );
        assert!(
            !waits_for_transfers(one_gib, true, MAX_WAIT_FOR_TRANSFERS),
            "nor one that has waited long enough"
        );
    }

    #[test]
    fn a_snapshot_needs_the_entries_and_a_quarter_of_the_last_one_in_new_log() {
        assert!(due(10_000, 10_000, 300, 1_000));
        assert!(!due(9_999, 10_000, 300, 1_000), "too few entries");
        assert!(
            !due(10_000, 10_000, 249, 1_000),
            "too little new log for that state"
        );
        assert!(due(10_000, 10_000, 0, 0), "the first snapshot");
    }
}
