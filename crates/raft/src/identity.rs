//! A data directory's identity (`<data_dir>/identity.json`): which node it belongs to, of
//! which cluster, and whether it holds every entry it ever acknowledged.
//!
//! Why: Raft's safety rests on a voter never forgetting what it acknowledged. A member whose
//! disk was wiped and that starts with its usual flags has forgotten everything; if it voted,
//! it could elect a candidate that lacks committed entries, and acknowledged writes would be
//! lost. So a member that starts with an empty log is *catching up*: it grants no vote and no
//! pre-vote (except to a candidate that has nothing beyond the initial membership either,
//! which is how a new cluster forms) and never campaigns, until a leader of the current term
//! has shown that its log holds everything committed (see
//! [`caught_up_by`](Identity::caught_up_by)). It then votes again, with no membership change
//! and no election: it has behaved as a learner until then.
//!
//! The cluster id is derived from the initial members and the cluster secret, so every
//! member that forms a cluster computes the same one; members that join later learn it from
//! their peers. A data directory started as another node, or against a cluster with another
//! id, is refused.

use crate::NodeId;
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: NodeId,
    /// `None` until this member formed a cluster or learned the id from a peer.
    pub cluster_id: Option<String>,
    /// False from the moment a member starts with an empty log until a leader proved it holds
    /// everything committed; meanwhile it votes for nobody and never campaigns.
    pub caught_up: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "this data directory belongs to node {recorded}, not node {given}; start it with \
         --node-id {recorded}, or give node {given} a data directory of its own"
    )]
    WrongNode { recorded: NodeId, given: NodeId },
    #[error(
        "this data directory belongs to cluster {recorded}, but the member at {peer} belongs to \
         cluster {theirs}; check --peers and --cluster-token, or start with an empty data \
         directory to join that cluster"
    )]
    WrongCluster {
        recorded: String,
        peer: String,
        theirs: String,
    },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

impl Identity {
    /// True if an append that this member accepted proves it now holds every committed
    /// entry: the leader had committed an entry of its own term (so everything before it is
    /// committed, and a leader's log holds all of that), and this member's log reaches that
    /// far. `last_index` is the index this member's log matches the leader's up to.
    pub fn caught_up_by(
        leader_term: u64,
        leader_commit: Option<(u64, u64)>,
        last_index: Option<u64>,
    ) -> bool {
        match (leader_commit, last_index) {
            (Some((commit_term, commit_index)), Some(last)) => {
                commit_term == leader_term && last >= commit_index
            }
            _ => false,
        }
    }
}

/// The id of the cluster formed by `members` with `secret`: the same on every member that
/// forms it, different for other members or another secret.
pub fn cluster_id_for(secret: &str, members: &BTreeMap<NodeId, BasicNode>) -> String {
    let mut text = String::from("hakv-cluster\n");
    for (id, node) in members {
        text.push_str(&format!("{id}={}\n", node.addr));
    }
    text.push_str(secret);
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// This member's identity and whether it is catching up, shared by the node, its peer
/// endpoints and its vote judge.
pub(crate) struct NodeIdentity {
    pub(crate) file: IdentityFile,
    pub(crate) catching_up: Arc<AtomicBool>,
}

impl NodeIdentity {
    pub(crate) fn new(file: IdentityFile) -> NodeIdentity {
        let catching_up = Arc::new(AtomicBool::new(!file.get().caught_up));
        NodeIdentity { file, catching_up }
    }

    /// This member holds everything committed: it votes (and may campaign) again.
    pub(crate) fn mark_caught_up(&self) {
        if !self.catching_up.swap(false, Ordering::SeqCst) {
            return;
        }
        tracing::info!("caught up with the leader's commit point: voting again");
        if let Err(e) = self.file.update(|id| id.caught_up = true) {
            // In memory it stands; after a restart it would catch up again, which is safe.
            tracing::warn!(error = %e, "recording that this member caught up failed");
        }
    }

    /// Records the cluster id (learned or formed); a different one already recorded stays.
    pub(crate) fn learn_cluster_id(&self, cluster_id: &str) {
        let result = self.file.update(|id| {
            id.cluster_id.get_or_insert_with(|| cluster_id.to_owned());
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording the cluster id failed");
        }
    }
}

/// The identity file, read once and rewritten (atomically) whenever the identity changes.
pub(crate) struct IdentityFile {
    path: PathBuf,
    current: Mutex<Identity>,
}

impl IdentityFile {
    /// Opens `<data_dir>/identity.json`, creating it for `node_id` when missing: caught up when
    /// the log holds something (a directory from before identities), catching up when empty.
    pub(crate) fn open(
        data_dir: &Path,
        node_id: NodeId,
        log_is_empty: bool,
    ) -> Result<IdentityFile, IdentityError> {
        let path = data_dir.join("identity.json");
        let error = |reason: String| IdentityError::File {
            path: path.clone(),
            reason,
        };
        let identity = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Identity>(&bytes).map_err(|e| error(e.to_string()))?,
            Err(e) if e.kind() == ErrorKind::NotFound => Identity {
                node_id,
                cluster_id: None,
                caught_up: !log_is_empty,
            },
            Err(e) => return Err(error(e.to_string())),
        };
        // An empty log holds nothing it could vote with, whatever the file says (the log may
        // have been lost without the rest of the directory).
        let identity = Identity {
            caught_up: identity.caught_up && !log_is_empty,
            ..identity
        };
        if identity.node_id != node_id {
            return Err(IdentityError::WrongNode {
                recorded: identity.node_id,
                given: node_id,
            });
        }
        let file = IdentityFile {
            path: path.clone(),
            current: Mutex::new(identity.clone()),
        };
        file.write(&identity).map_err(|e| error(e.to_string()))?;
        Ok(file)
    }

    pub(crate) fn get(&self) -> Identity {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the identity and writes it durably; a no-op change writes nothing.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Identity)) -> std::io::Result<()> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = current.clone();
        change(&mut next);
        if next != *current {
            self.write(&next)?;
            *current = next;
        }
        Ok(())
    }

    fn write(&self, identity: &Identity) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(identity).expect("an identity serializes"))?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_refused_to_another_node_and_remembers_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let file = IdentityFile::open(dir.path(), 2, true).unwrap();
        assert!(!file.get().caught_up, "an empty log starts catching up");
        file.update(|id| {
            id.caught_up = true;
            id.cluster_id = Some("c1".into());
        })
        .unwrap();
        drop(file);
        let reopened = IdentityFile::open(dir.path(), 2, false).unwrap().get();
        assert_eq!(
            reopened,
            Identity {
                node_id: 2,
                cluster_id: Some("c1".into()),
                caught_up: true
            }
        );
        let wrong = IdentityFile::open(dir.path(), 3, false);
        assert!(matches!(
            wrong,
            Err(IdentityError::WrongNode {
                recorded: 2,
                given: 3
            })
        ));
        // The log lost, the file kept: it must catch up again before it votes.
        let log_lost = IdentityFile::open(dir.path(), 2, true).unwrap().get();
        assert!(!log_lost.caught_up);
    }

    #[test]
    fn only_a_commit_of_the_leaders_own_term_that_the_log_reaches_proves_catching_up() {
        assert!(Identity::caught_up_by(5, Some((5, 100)), Some(100)));
        assert!(Identity::caught_up_by(5, Some((5, 100)), Some(140)));
        assert!(!Identity::caught_up_by(5, Some((5, 100)), Some(99)));
        // A new leader's commit index from an older term may trail what was committed.
        assert!(!Identity::caught_up_by(5, Some((4, 100)), Some(100)));
        assert!(!Identity::caught_up_by(5, None, Some(100)));
        assert!(!Identity::caught_up_by(5, Some((5, 100)), None));
    }

    #[test]
    fn the_cluster_id_depends_on_members_and_secret_only() {
        let members = |addr: &str| BTreeMap::from([(1, BasicNode::new(addr)), (2, BasicNode::new("b:2"))]);
        let id = cluster_id_for("secret", &members("a:1"));
        assert_eq!(id, cluster_id_for("secret", &members("a:1")));
        assert_ne!(id, cluster_id_for("other", &members("a:1")));
        assert_ne!(id, cluster_id_for("secret", &members("a:9")));
    }
}
