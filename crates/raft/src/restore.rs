//! Seeding the first member of a new cluster from a backup (`hakv restore --node-id`).
//!
//! The backup becomes this member's state *and* its Raft snapshot at the position of the
//! cluster's first entry (index 0, where a new cluster writes its membership), with the log
//! purged up to there. So the member starts as a member of an initialized cluster of
//! `members`: it campaigns, the other members (started with empty data directories) vote for
//! it (it holds nothing beyond index 0), and since its log begins after index 0, every one of
//! them is sent the snapshot, restored data included. Nothing is ever appended on top of data
//! a follower lacks.

use crate::error::RaftStoreError;
use crate::identity::{IdentityFile, cluster_id_for};
use crate::snapshot_file::{SnapshotFile, applied_meta};
use crate::{LogId, LogStore, NodeId, StoredMembership};
use hakv_store::{SnapshotImport, StateMachine, StoreConfig, staggered_l0_trigger};
use openraft::{BasicNode, Membership};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::Path;

/// Block cache while restoring: the import writes, it hardly reads.
const RESTORE_CACHE_BYTES: u64 = 8 << 20;

/// Seeds `data_dir` (which must be empty or absent) as member `node_id` of a new cluster of
/// `members` with `secret`, holding the backup that `open` reads.
pub fn seed_member<R: Read>(
    data_dir: &Path,
    node_id: NodeId,
    members: &BTreeMap<NodeId, BasicNode>,
    secret: &str,
    open: impl Fn() -> io::Result<R>,
) -> Result<SnapshotImport, RaftStoreError> {
    if !members.contains_key(&node_id) {
        return Err(RaftStoreError::corrupt(
            "restore",
            format!("node {node_id} is not one of the members"),
        ));
    }
    let state = StateMachine::open(&StoreConfig {
        l0_trigger: staggered_l0_trigger(node_id),
        ..StoreConfig::new(data_dir.join("state"), RESTORE_CACHE_BYTES)
    })?;
    let first = LogId::default();
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let membership = StoredMembership::new(Some(first), Membership::new(vec![voters], members.clone()));
    let meta = applied_meta(&Some(first), &membership);
    // The backup's own Raft position (of the cluster it was taken from) is overwritten.
    let imported = state.import_snapshot_from(open, &meta, |_| {})?;
    SnapshotFile::open(data_dir.join("snapshot"))?.checkpoint(&state)?;
    LogStore::open(&data_dir.join("raft-log"))?.seed(first)?;
    let identity =
        IdentityFile::open(data_dir, node_id, false).map_err(|e| RaftStoreError::corrupt("identity", e))?;
    identity
        .update(|id| {
            id.cluster_id = Some(cluster_id_for(secret, members));
            id.caught_up = true;
        })
        .map_err(RaftStoreError::Io)?;
    Ok(imported)
}
