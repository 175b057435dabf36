//! How many snapshots this node is streaming to members that catch up. While one is, the
//! leader puts off building its own stored snapshot (`snapshot_policy`): a gigabyte build
//! reads and writes the whole state at once, and in a catch-up run it fell on the transfer's
//! first seconds and gave that window's writes a p99 of 100 ms (docs/benchmarks.md, "Catch-up
//! in small frames"). The member that catches up is sent the live state, never the stored
//! snapshot, so nothing waits for the build.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The count of snapshot transfers in flight from this node.
#[derive(Debug, Default)]
pub struct SnapshotsSending(AtomicUsize);

impl SnapshotsSending {
    /// Counts a transfer until the returned guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> Sending {
        self.0.fetch_add(1, Ordering::Relaxed);
        Sending(self.clone())
    }

    /// Whether any transfer is in flight.
    pub fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

/// One transfer in flight; it ends when this is dropped (sent, refused, failed or cancelled).
pub(crate) struct Sending(Arc<SnapshotsSending>);

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_counts_until_it_ends() {
        let sending = Arc::new(SnapshotsSending::default());
        assert!(!sending.any());
        let first = sending.start();
        let second = sending.start();
        drop(first);
        assert!(sending.any(), "one still in flight");
        drop(second);
        assert!(!sending.any());
    }
}
