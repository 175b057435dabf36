//! Background purge of expired keys. Purges go through the writer like any write
//! (`Op::Expire`, which only removes the key if it still holds the expired revision), so they
//! are ordered with client writes. Only the leader (or the single node) purges.
//!
//! On a single node, reads hide expired keys by its own clock, and the purge only reclaims
//! space. In a cluster, reads judge expiry by the state's clock (`Node::clock_ms`), so the
//! purge is what makes a key expire on every member: it wakes when the next key is due.

use crate::node::Node;
use hakv_store::{Op, Outcome};
use std::sync::Arc;
use std::time::Duration;

/// Keys purged per round; a backlog drains over several rounds without starving clients.
const BATCH: usize = 256;
/// The purge never wakes more often than this, however many keys fall due.
const MIN_WAIT: Duration = Duration::from_millis(10);

/// Purges due keys, then sleeps until the next key is due, or `every` at most (and after a
/// failed round: the node is overloaded, its disk is full, or it is shutting down).
pub async fn purge_loop(node: Arc<Node>, every: Duration) {
    loop {
        let mut wait = every;
        if node.leads() {
            let mut purged = Ok(BATCH);
            while matches!(purged, Ok(BATCH)) {
                purged = purge_once(&node).await;
            }
            if purged.is_ok() {
                wait = until_next_due(&node).map_or(every, |due| due.clamp(MIN_WAIT, every));
            }
        }
        tokio::time::sleep(wait).await;
    }
}

/// How long until the next stored key is due, by the clock a purge is stamped with.
fn until_next_due(node: &Node) -> Option<Duration> {
    let next = node.state_machine.next_expiry().ok()??;
    Some(Duration::from_millis(next.saturating_sub(node.write_clock_ms())))
}

/// Proposes removal of up to `BATCH` due keys; returns how many were due, or `Err` when a
/// purge failed (it is tried again next round).
async fn purge_once(node: &Node) -> Result<usize, ()> {
    let due = match node.state_machine.due_for_expiry(node.write_clock_ms(), BATCH) {
        Ok(due) => due,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list expired keys");
            return Err(());
        }
    };
    let count = due.len();
    let proposals = due
        .into_iter()
        .map(|(key, revision)| node.write(Op::Expire { key, revision }));
    for outcome in futures_util::future::join_all(proposals).await {
        match outcome {
            Ok(Outcome::Deleted { .. }) => metrics::counter!("hakv_storage_expired_keys_total").increment(1),
            Ok(_) => {}
            Err(_) => return Err(()),
        }
    }
    Ok(count)
}
