//! When to take a checkpoint (the snapshot of `snapshot_file`, after which the log may be
//! purged): after `snapshot_every` entries, as openraft would, *and* only once the log has
//! grown by a quarter of what a snapshot of the state weighs since. A checkpoint itself costs
//! one fsync; the second rule is about the log kept behind it. A member that was down for a
//! while catches up from the log as long as the log still reaches back to where it stopped,
//! and otherwise needs the whole state sent; with this rule the log grows by up to about a
//! quarter of the state's size on disk between checkpoints (compressed: about 120 MB of log,
//! some 20 s of full write load, for the 1 GB soak's 470 MB of tables), and its disk stays in
//! proportion to the state's. Right after a checkpoint it reaches back only the 1000 entries
//! openraft keeps, so a member further behind then, or one still installing a snapshot, is
//! sent a (second) snapshot (docs/benchmarks.md, "Under client load, a second snapshot": an
//! open problem).
//!
//! Builds of snapshots that copied the state took turns among followers, waited for transfers
//! and for disk room; a checkpoint writes a few hundred bytes, so it needs none of that, and
//! a disk running low does not hold it back (the purge after it frees the log's space).

use crate::{LogStore, Raft};
use hakv_store::StateMachine;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Whether to take a checkpoint now.
fn due(entries_since: u64, every: u64, log_bytes_since: u64, state_bytes: u64) -> bool {
    entries_since >= every && log_bytes_since >= state_bytes / 4
}

/// Triggers checkpoints by the policy above until Raft stops. What a snapshot of `state`
/// weighs is taken as its sorted tables' size on disk.
pub(crate) fn spawn(raft: Raft, log: LogStore, state: Arc<StateMachine>, every: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut bytes_at_last = 0;
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
            if !due(
                applied.saturating_sub(snapshot),
                every,
                appended - bytes_at_last,
                state.table_bytes(),
            ) {
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
    fn a_checkpoint_needs_the_entries_and_a_quarter_of_the_state_in_new_log() {
        assert!(due(10_000, 10_000, 300, 1_000));
        assert!(!due(9_999, 10_000, 300, 1_000), "too few entries");
        assert!(
            !due(10_000, 10_000, 249, 1_000),
            "too little new log for that state"
        );
        assert!(due(10_000, 10_000, 0, 0), "the first checkpoint");
    }
}
