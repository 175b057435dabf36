//! A Raft node: storage opened, openraft started, proposals grouped into log entries, read
//! barriers, and the peer endpoints as a router for whoever owns the listener.
//! [`RaftNode::open`] plus [`RaftNode::peer_router`] is what a server uses;
//! [`RaftNode::start`] also serves the router on a listener of its own (tests and tools).

use crate::bootstrap::Bootstrap;
use crate::config::PeerServerLimits;
use crate::config::RaftNodeConfig;
use crate::election_watch::{self, LeaderContact};
use crate::identity::{IdentityError, IdentityFile, NodeIdentity};
use crate::leadership::Leadership;
use crate::lease::Lease;
use crate::peer_client::PeerNetwork;
use crate::peer_server::{self, PeerAuth};
use crate::pre_vote::{Judge, Patience};
use crate::proposer::{self, ProposeError, Proposer};
use crate::read_barrier::{BarrierError, ReadBarrier};
use crate::snapshot_policy;
use crate::status::ClusterStatus;
use crate::{CommittedIndex, LogStore, NodeId, Raft, RaftStoreError, StateMachineStore};
use hakv_store::{ApplyHook, Command, DiskSpace, Outcome, StateMachine, StoreConfig, staggered_l0_trigger};
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, RaftMetrics};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long shutdown waits for in-flight peer requests before dropping them.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown lets entries in flight finish before stopping Raft under them.
const PROPOSAL_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid raft configuration: {0}")]
    Config(#[from] Box<openraft::ConfigError>),
    #[error("RaftNodeConfig::advertise_addr is required to open a node without a listener")]
    NoAdvertiseAddr,
    #[error("storage: {0}")]
    Storage(#[from] RaftStoreError),
    #[error("the peer listener failed: {0}")]
    Listener(#[from] std::io::Error),
    #[error("raft failed to start or stop: {0}")]
    Fatal(#[from] openraft::error::Fatal<NodeId>),
    #[error("initializing the cluster failed: {0}")]
    Initialize(#[from] RaftError<NodeId, InitializeError<NodeId, BasicNode>>),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// The peer listener [`RaftNode::start`] runs.
struct OwnListener {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct RaftNode {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft,
    state: Arc<StateMachine>,
    /// Free space of the data directory: appends, snapshots and client writes are refused
    /// while it is below the reserve.
    disk: Arc<DiskSpace>,
    /// Stamps proposals (`propose`): the wall clock, never going backward.
    clock: hakv_store::Clock,
    member: BasicNode,
    auth: Arc<PeerAuth>,
    peer_limits: PeerServerLimits,
    pub(crate) leadership: Leadership,
    proposer: Proposer,
    barrier: Arc<ReadBarrier>,
    contact: Arc<LeaderContact>,
    judge: Arc<Judge>,
    pub(crate) bootstrap: Bootstrap,
    pub(crate) bootstrap_task: Option<JoinHandle<()>>,
    election_watch: JoinHandle<()>,
    snapshot_policy: JoinHandle<()>,
    committed: CommittedIndex,
    /// Set while [`hand_over_leadership`](Self::hand_over_leadership) runs: no new proposals.
    pub(crate) handing_over: Arc<AtomicBool>,
    /// The leader's read lease; a handover suspends it.
    pub(crate) lease: Arc<Lease>,
    /// Calls to peers outside openraft's own (asking a successor to campaign).
    pub(crate) network: PeerNetwork,
    listener: Option<OwnListener>,
}

impl RaftNode {
    /// Opens the node's storage under `config.data_dir` and starts Raft, without serving
    /// peers: serve [`peer_router`](Self::peer_router) on some listener reachable at
    /// `config.advertise_addr` (required). The node joins a cluster once some node
    /// [initializes](Self::initialize) one that includes it.
    pub async fn open(config: RaftNodeConfig, hook: Arc<dyn ApplyHook>) -> Result<RaftNode, NodeError> {
        let advertise = config.advertise_addr.clone().ok_or(NodeError::NoAdvertiseAddr)?;
        let raft_config = Arc::new(config.openraft_config()?);
        let log = LogStore::open(&config.data_dir.join("raft-log"))?;
        let disk = DiskSpace::watch(&config.data_dir, config.disk_reserve)?;
        let identity = IdentityFile::open(&config.data_dir, config.node_id, log.is_empty()?)?;
        let identity = Arc::new(NodeIdentity::new(identity));
        let log_for_votes = log.clone();
        let committed = log.committed_index();
        let state = Arc::new(
            StateMachine::open(&StoreConfig {
                l0_trigger: staggered_l0_trigger(config.node_id),
                ..StoreConfig::new(config.data_dir.join("state"), config.block_cache_bytes)
            })
            .map_err(RaftStoreError::from)?,
        );
        let state_machine = StateMachineStore::open(state.clone(), hook, config.data_dir.join("snapshot"))?;
        let applied_index = state_machine.applied_index();
        let log_for_policy = log.clone();
        // openraft's followers refuse votes for election_timeout_max after hearing from their
        // leader (its `leader_lease`); the leader's read lease relies on a share of that.
        let lease = Arc::new(Lease::new(
            Duration::from_millis(config.timing.election_timeout_max_ms),
            config.lease_reads,
        ));
        let network = PeerNetwork::new(
            config.node_id,
            &config.cluster_token,
            config.peer_client.clone(),
            lease.clone(),
        );
        let send_live = state_machine.live_snapshots_switch();
        let raft = Raft::new(config.node_id, raft_config, network.clone(), log, state_machine).await?;
        // openraft has read the stored snapshot's meta: from here on snapshots are asked for
        // only to be sent, and may be sent live.
        send_live.store(true, std::sync::atomic::Ordering::Relaxed);

        let timing = config.timing;
        // A leader is taken as cut off only once its majority could have elected someone
        // else: followers that can still connect to it wait out the stall timeout (pre-vote).
        // Under full load an append answer is often later than one heartbeat (openraft 0.9
        // times it out at one heartbeat interval), which must not fail client requests.
        let leadership = Leadership::new(raft.metrics(), timing.leader_stall_ms);
        let heartbeat = Duration::from_millis(timing.heartbeat_ms);
        let handing_over = Arc::new(AtomicBool::new(false));
        let proposer = Proposer::start(
            raft.clone(),
            leadership.clone(),
            &config.proposer,
            heartbeat,
            handing_over.clone(),
        );
        let barrier = ReadBarrier::new(
            raft.clone(),
            leadership.clone(),
            applied_index,
            lease.clone(),
            config.proposer.timeout,
        );
        let contact = Arc::new(LeaderContact::new());
        let judge = Arc::new(Judge {
            id: config.node_id,
            raft: raft.clone(),
            log: log_for_votes,
            contact: contact.clone(),
            patience: Patience {
                suspect_after: Duration::from_millis(timing.election_timeout_max_ms),
                stalled_after: Duration::from_millis(timing.leader_stall_ms),
                probe_timeout: config.peer_client.connect_timeout,
            },
            catching_up: identity.catching_up.clone(),
            granted_to_others: std::sync::atomic::AtomicU64::new(0),
        });
        if judge.is_catching_up() {
            tracing::warn!(
                "this member's log is empty: it votes for nobody and never campaigns until the \
                 leader has brought it up to date (a new member, or one that lost its data)"
            );
        }
        let bootstrap = Bootstrap {
            id: config.node_id,
            raft: raft.clone(),
            network: network.clone(),
            identity,
            secret: Arc::from(config.cluster_token.as_str()),
            contact: contact.clone(),
        };
        let election_watch = election_watch::spawn(judge.clone(), network.clone());
        let snapshot_policy = snapshot_policy::spawn(
            raft.clone(),
            log_for_policy,
            state.clone(),
            network.clone(),
            config.snapshot_every_entries,
            config.logs_kept_after_snapshot,
        );
        Ok(RaftNode {
            id: config.node_id,
            raft,
            state,
            disk,
            clock: hakv_store::Clock::default(),
            member: BasicNode::new(advertise),
            auth: Arc::new(PeerAuth::new(&config.cluster_token)),
            peer_limits: PeerServerLimits {
                snapshot_pace: config.peer_client.snapshot_bytes_per_second,
                ..config.peer_limits
            },
            leadership,
            proposer,
            barrier,
            contact,
            judge,
            bootstrap,
            bootstrap_task: None,
            election_watch,
            snapshot_policy,
            committed,
            handing_over,
            lease,
            network,
            listener: None,
        })
    }

    /// [`open`](Self::open), then serves [`peer_router`](Self::peer_router) on `listener`.
    /// `config.advertise_addr` defaults to the listener's address.
    pub async fn start(
        mut config: RaftNodeConfig,
        listener: TcpListener,
        hook: Arc<dyn ApplyHook>,
    ) -> Result<RaftNode, NodeError> {
        let addr = listener.local_addr()?;
        config.advertise_addr.get_or_insert_with(|| addr.to_string());
        let mut node = RaftNode::open(config, hook).await?;
        let app = node.peer_router();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "peer listener failed");
            }
        });
        node.listener = Some(OwnListener { addr, stop, task });
        Ok(node)
    }

    /// The `/raft/*` endpoints, behind the cluster token, ready to merge into a server's
    /// router. They stop answering usefully once the node is shut down.
    pub fn peer_router(&self) -> axum::Router {
        peer_server::router(
            self.raft.clone(),
            self.auth.clone(),
            self.peer_limits,
            self.contact.clone(),
            self.judge.clone(),
            self.bootstrap.identity.clone(),
            self.disk.clone(),
        )
    }

    /// Touch on every client request: snapshot transfers are paced while clients are served,
    /// and go at full speed otherwise.
    pub fn client_activity(&self) -> &Arc<crate::ClientActivity> {
        self.network.client_activity()
    }

    /// The time a command proposed here now would be stamped with (see `propose`).
    pub fn proposal_clock_ms(&self) -> u64 {
        self.clock.now_ms().max(self.state.clock_ms())
    }

    /// The data directory's free space, as this member watches it.
    pub fn disk_space(&self) -> &Arc<DiskSpace> {
        &self.disk
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The listener address when [`start`](Self::start) serves the peers itself.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().map(|l| l.addr)
    }

    /// This node as a cluster member (its advertised address).
    pub fn member(&self) -> BasicNode {
        self.member.clone()
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The local replica (stale reads; linearizable reads pass a barrier first).
    pub fn state(&self) -> &Arc<StateMachine> {
        &self.state
    }

    /// Peer requests refused for a missing or wrong cluster token.
    pub fn rejected_peer_requests(&self) -> u64 {
        self.auth.rejected()
    }

    /// The current leader as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.leadership.metrics().current_leader
    }

    /// True if this node leads and a quorum acknowledged it within the longest election
    /// timeout; false means a write here would not commit soon (or at all).
    pub fn leader_has_quorum(&self) -> bool {
        self.leadership.standing() == crate::leadership::Standing::Leader
    }

    /// True if this follower has heard from a leader within the stall timeout (appends and
    /// heartbeats): false when its leader is gone or cut off and no new one was elected, as
    /// in a cluster that lost its majority.
    pub fn hears_from_leader(&self) -> bool {
        self.contact.silent_for() < self.leadership.stall_timeout()
    }

    /// True while [`hand_over_leadership`](Self::hand_over_leadership) runs.
    pub fn is_handing_over(&self) -> bool {
        self.handing_over.load(Ordering::SeqCst)
    }

    /// True if `metrics` (this node's) show it leading with a recent majority acknowledgement.
    pub fn leads_with_quorum_in(&self, metrics: &RaftMetrics<NodeId, BasicNode>) -> bool {
        self.leadership.stands_in(metrics)
    }

    /// Waits (at most `timeout`) until this node leads with a recent majority
    /// acknowledgement, or stops leading; true in the first case. For a leader elected a
    /// moment ago, or one whose followers were briefly slow to answer.
    pub async fn wait_for_quorum(&self, timeout: Duration) -> bool {
        let id = self.id;
        let leadership = self.leadership.clone();
        let mut metrics = self.raft.metrics();
        let settled = metrics.wait_for(|m| m.current_leader != Some(id) || leadership.stands_in(m));
        let _ = tokio::time::timeout(timeout, settled).await;
        self.leader_has_quorum()
    }

    /// What this node knows about the cluster, for `GET /cluster`.
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus::from_metrics(&self.leadership.metrics(), self.committed.get())
    }

    /// True when openraft's core has published nothing for the stall timeout: it is stuck
    /// (on a stalled disk, say), so this member's view of the cluster is not to be trusted.
    pub fn core_is_stuck(&self) -> bool {
        self.leadership.core_is_stuck()
    }

    /// The error that stopped openraft's core, if it stopped by itself (a storage failure or
    /// a panic); `None` while it runs and after a requested shutdown.
    pub fn fatal_error(&self) -> Option<String> {
        match &self.raft.metrics().borrow().running_state {
            Ok(()) | Err(openraft::error::Fatal::Stopped) => None,
            Err(fatal) => Some(fatal.to_string()),
        }
    }

    /// Proposals waiting in the proposer's queue for a log entry.
    pub fn proposal_queue_depth(&self) -> usize {
        self.proposer.queue_depth()
    }

    /// True when no proposal is queued, being formed into an entry, or in flight.
    pub(crate) fn proposer_idle(&self) -> bool {
        self.proposer.is_idle()
    }

    /// Forms a cluster of `members` and records its id. Calling it again, or on a node that
    /// already holds a log, is not an error: initialization happens once, whoever calls it
    /// first. A member of a static cluster leaves this to [`spawn_bootstrap`](Self::spawn_bootstrap),
    /// which forms the cluster only when it is new.
    pub async fn initialize(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<(), NodeError> {
        self.bootstrap.initialize(members).await
    }

    /// Proposes one command and returns its outcome once it is committed and applied here;
    /// concurrent proposals share one log entry (one fsync per node). Fails at once on a
    /// follower (`NotLeader`) or on a leader without a recent quorum (`NoQuorum`). See
    /// [`ProposeError`] for which failures are safe to retry. Dropping the future does not
    /// withdraw a queued command.
    ///
    /// The command is stamped here, with this leader's time (its wall clock kept from going
    /// backward, or the state's clock when that is later), whichever member the client sent it to: time in the state
    /// is the leaders' time, never a follower's (the state machine keeps it monotonic).
    pub async fn propose(&self, mut command: Command) -> Result<Outcome, ProposeError> {
        command.at_ms = self.clock.now_ms().max(self.state.clock_ms());
        proposer::check_standing(&self.leadership)?;
        if self.handing_over.load(Ordering::SeqCst) {
            return Err(ProposeError::HandingOver);
        }
        if self.disk.is_low() {
            metrics::counter!("hakv_writes_refused_disk_full_total").increment(1);
            return Err(ProposeError::DiskFull);
        }
        self.proposer.propose(command).await
    }

    /// On the leader: confirms leadership with a quorum (rounds shared by concurrent callers,
    /// each caller served by a round that started after it called), then waits until this
    /// node has applied the read index, which it returns. A read of the local state after
    /// `Ok` is linearizable; followers pass the index to [`wait_applied`](Self::wait_applied).
    pub async fn linearizable_barrier(&self, timeout: Duration) -> Result<u64, BarrierError> {
        self.barrier.barrier(timeout).await
    }

    /// Waits until this node has applied `index` (a read index from the leader, or a write's
    /// log index), at most `timeout`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), BarrierError> {
        self.barrier.wait_applied(index, timeout).await
    }

    /// Stops, in order: the peer listener if [`start`](Self::start) runs one, new proposals
    /// (queued ones get `ShuttingDown`; entries in flight get a short grace), Raft (anything
    /// still in flight gets `Unknown`), then flushes the state machine, so no request is
    /// handled by a half-stopped node and what was applied is on disk at exit.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        if let Some(listener) = self.listener {
            let _ = listener.stop.send(true);
            let mut task = listener.task;
            if tokio::time::timeout(HTTP_DRAIN_TIMEOUT, &mut task).await.is_err() {
                // Peers keep pooled connections open; do not let them hold the shutdown.
                task.abort();
            }
        }
        self.election_watch.abort();
        self.snapshot_policy.abort();
        if let Some(task) = &self.bootstrap_task {
            task.abort();
        }
        let proposer = self.proposer.stop(PROPOSAL_DRAIN_TIMEOUT).await;
        if let Err(e) = self.raft.shutdown().await {
            tracing::error!(error = %e, "raft did not stop cleanly");
        }
        if let Some(proposer) = proposer {
            let _ = proposer.await;
        }
        self.state.persist().map_err(RaftStoreError::from)?;
        Ok(())
    }
}
