//! How a member of a static cluster (`--peers`) starts: it asks its peers who they are
//! (`POST /raft/identity`), refuses to run against another cluster, forms the cluster only
//! when it is new, and otherwise waits for the leader to bring it up to date.
//!
//! A member with an empty log cannot tell by itself whether the cluster is new or it lost its
//! data. So it forms the cluster only when a majority of the members (itself included)
//! answered that their logs are empty and none holds a log: every member that forms it writes
//! the same membership entry, so several may. If any peer holds a log, the cluster exists and
//! this member lost its data: it stays catching up (`crate::identity`) until the leader has
//! sent it everything committed. Members without a cluster id learn it from their peers.

use crate::election_watch::LeaderContact;
use crate::identity::{Identity, IdentityError, NodeIdentity, cluster_id_for};
use crate::node::NodeError;
use crate::peer_client::PeerNetwork;
use crate::peer_server::PeerIdentity;
use crate::{NodeId, Raft, RaftNode};
use openraft::BasicNode;
use openraft::error::{InitializeError, RaftError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long the background task waits for each peer's identity.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the check before serving waits for each peer. Short: when a whole cluster
/// restarts, every peer is itself still opening its store, its port bound but not yet
/// answering, and each member waited out the full timeout before serving (about 1 s of a
/// 2.4 s restart to ready). A peer that has not answered is not held against a member; a
/// running one answers in milliseconds.
const START_CHECK_TIMEOUT: Duration = Duration::from_millis(250);
/// How often the background task asks again.
const RETRY_EVERY: Duration = Duration::from_millis(300);
/// Forming a cluster elects its former at once (openraft's `initialize`): members form it one
/// after another, by id, this far apart, and one that has meanwhile received the first entry
/// from the elected leader does not form it again. All forming at once split the first votes
/// (terms 1 to 4 within a few ms).
const FORM_STAGGER: Duration = Duration::from_millis(500);

/// What starting up needs of a node, cheap to clone into a background task.
#[derive(Clone)]
pub(crate) struct Bootstrap {
    pub id: NodeId,
    pub raft: Raft,
    pub network: PeerNetwork,
    pub identity: Arc<NodeIdentity>,
    /// The cluster secret, which the cluster id is derived from.
    pub secret: Arc<str>,
    /// The election watch's clock of leader contact (`crate::election_watch`).
    pub contact: Arc<LeaderContact>,
}

impl Bootstrap {
    /// Forms a cluster of `members`, recording its id; "already formed" is not an error (see
    /// [`RaftNode::initialize`]).
    pub(crate) async fn initialize(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<(), NodeError> {
        let cluster_id = cluster_id_for(&self.secret, &members);
        match self.raft.initialize(members).await {
            Ok(()) => {
                // `initialize` has started this member's own first election. Until it ends,
                // the election watch must not count the silence since start and campaign on
                // top of it: it did, ~260 ms after start, and the cluster was born at term 2
                // with the first term's votes thrown away.
                self.contact.touch();
                self.identity.learn_cluster_id(&cluster_id);
                // It wrote the cluster's first entry itself: there is nothing to catch up.
                self.identity.mark_caught_up();
                Ok(())
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn log_is_empty(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.last_log_index.is_none() && metrics.snapshot.is_none()
    }

    /// Every other member's answer to `POST /raft/identity`, as (address, answer); members
    /// that do not answer within `timeout` are left out.
    async fn ask_identities(
        &self,
        members: &BTreeMap<NodeId, BasicNode>,
        timeout: Duration,
    ) -> Vec<(String, PeerIdentity)> {
        let mut asks = tokio::task::JoinSet::new();
        for (id, node) in members.iter().filter(|(id, _)| **id != self.id) {
            let (network, id, addr) = (self.network.clone(), *id, node.addr.clone());
            asks.spawn(async move {
                let answer = tokio::time::timeout(timeout, network.identity(id, &addr)).await;
                match answer {
                    Ok(Ok(answer)) => Some((addr, answer)),
                    _ => None,
                }
            });
        }
        let mut answers = Vec::new();
        while let Some(answer) = asks.join_next().await {
            answers.extend(answer.ok().flatten());
        }
        answers
    }

    async fn run(self, members: BTreeMap<NodeId, BasicNode>, form: bool) {
        loop {
            let log_empty = self.log_is_empty();
            let knows_id = self.identity.file.get().cluster_id.is_some();
            if knows_id && !(form && log_empty) {
                return;
            }
            let answers = self.ask_identities(&members, CHECK_TIMEOUT).await;
            if let Some(id) = answers.iter().find_map(|(_, a)| a.cluster_id.clone()) {
                self.identity.learn_cluster_id(&id);
            }
            if form && log_empty && may_form(&members, &answers) {
                let rank = members.keys().position(|id| *id == self.id).unwrap_or(0) as u32;
                if rank > 0 {
                    tokio::time::sleep(FORM_STAGGER * rank).await;
                    if !self.log_is_empty() {
                        continue; // formed by a member before this one
                    }
                }
                tracing::info!(members = members.len(), "forming a new cluster");
                if let Err(e) = self.initialize(members.clone()).await {
                    tracing::error!(error = %e, "forming the cluster failed");
                }
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
}

impl RaftNode {
    /// Asks every other member once who it is, and refuses this data directory when one that
    /// answers belongs to another cluster. Members that do not answer (not started yet) are
    /// not held against it.
    pub async fn check_peer_identities(
        &self,
        members: &BTreeMap<NodeId, BasicNode>,
    ) -> Result<(), IdentityError> {
        let Some(ours) = self.bootstrap.identity.file.get().cluster_id else {
            return Ok(());
        };
        for (peer, answer) in self.bootstrap.ask_identities(members, START_CHECK_TIMEOUT).await {
            if let Some(theirs) = answer.cluster_id.filter(|theirs| *theirs != ours) {
                return Err(IdentityError::WrongCluster {
                    recorded: ours,
                    peer,
                    theirs,
                });
            }
        }
        Ok(())
    }

    /// In the background: learns the cluster id if this member does not know it, and, when
    /// `form` is set and this member's log is empty, forms the cluster of `members` once a
    /// majority of them is known to be new (see the module docs). Stops when there is
    /// nothing left to do, or at shutdown.
    pub fn spawn_bootstrap(&mut self, members: BTreeMap<NodeId, BasicNode>, form: bool) {
        let task: JoinHandle<()> = tokio::spawn(self.bootstrap.clone().run(members, form));
        if let Some(old) = self.bootstrap_task.replace(task) {
            old.abort();
        }
    }

    /// Records `cluster_id` as this member's cluster, unless one is recorded already.
    pub fn adopt_cluster_id(&self, cluster_id: &str) {
        self.bootstrap.identity.learn_cluster_id(cluster_id);
    }

    /// This member's identity as recorded in its data directory.
    pub fn identity(&self) -> Identity {
        self.bootstrap.identity.file.get()
    }

    /// True while this member catches up after starting with an empty log (no votes yet).
    pub fn is_catching_up(&self) -> bool {
        self.bootstrap
            .identity
            .catching_up
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// True if `answers` show a new cluster: a majority of `members` (this one, whose log is
/// empty, included) answered with empty logs, and nobody holds a log.
fn may_form(members: &BTreeMap<NodeId, BasicNode>, answers: &[(String, PeerIdentity)]) -> bool {
    if answers.iter().any(|(_, answer)| !answer.empty) {
        return false;
    }
    (answers.len() + 1) * 2 > members.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(empty: bool) -> (String, PeerIdentity) {
        let identity = PeerIdentity {
            node_id: 9,
            cluster_id: None,
            empty,
        };
        ("peer".into(), identity)
    }

    #[test]
    fn a_cluster_is_formed_only_by_a_new_majority() {
        let members: BTreeMap<NodeId, BasicNode> = (1..=3).map(|i| (i, BasicNode::new(""))).collect();
        assert!(
            !may_form(&members, &[]),
            "alone of three: maybe the others hold the log"
        );
        assert!(may_form(&members, &[answer(true)]));
        assert!(may_form(&members, &[answer(true), answer(true)]));
        assert!(
            !may_form(&members, &[answer(true), answer(false)]),
            "a peer holds a log"
        );
        let one: BTreeMap<NodeId, BasicNode> = BTreeMap::from([(1, BasicNode::new(""))]);
        assert!(may_form(&one, &[]));
    }
}
