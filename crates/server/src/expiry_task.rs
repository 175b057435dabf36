//! Background purge of expired keys. Reads already hide expired keys; this reclaims their
//! space. Purges go through the writer like any write (`Op::Expire`, which only removes the
//! key if it still holds the expired revision), so they are ordered with client writes.

use crate::clock::now_ms;
use crate::node::Node;
use hakv_store::{Op, Outcome};
use std::sync::Arc;
use std::time::Duration;

/// Keys purged per round; a backlog drains over several rounds without starving clients.
const BATCH: usize = 256;

pub async fn purge_loop(node: Arc<Node>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Only the leader proposes purges; the log carries them to every replica.
        while node.leads() && purge_once(&node).await == BATCH {}
    }
}

/// Proposes removal of up to `BATCH` due keys; returns how many were due.
async fn purge_once(node: &Node) -> usize {
    let due = match node.state_machine.due_for_expiry(now_ms(), BATCH) {
        Ok(due) => due,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list expired keys");
            return 0;
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
            // Overloaded or shutting down: try again next round.
            Err(_) => return 0,
        }
    }
    count
}
