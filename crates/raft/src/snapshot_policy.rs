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

use crate::{LogStore, Raft};
use hakv_store::DiskSpace;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Whether to build a snapshot now.
fn due(entries_since: u64, every: u64, log_bytes_since: u64, last_snapshot_bytes: u64) -> bool {
    entries_since >= every && log_bytes_since >= last_snapshot_bytes / 4
}

/// Whether the disk has room for a snapshot of about `last_snapshot_bytes` (plus growth)
/// above the reserve.
fn room_for(last_snapshot_bytes: u64, free: u64, reserve: u64) -> bool {
    free >= reserve + last_snapshot_bytes + last_snapshot_bytes / 4
}

/// Triggers snapshots by the policy above until Raft stops.
pub(crate) fn spawn(
    raft: Raft,
    log: LogStore,
    snapshot_bytes: Arc<AtomicU64>,
    every: u64,
    disk: Arc<DiskSpace>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut bytes_at_last = 0;
        let mut put_off = false;
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
