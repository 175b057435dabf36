//! Cluster mode: this node is one member of a Raft group (`hakv_raft`). Any member serves
//! any request: writes are proposed here when this node leads, and forwarded to the leader
//! otherwise; linearizable reads first pass a read barrier (ReadIndex), confirmed by the
//! leader, then read the local replica.

mod forward;
mod forward_queue;
pub mod internal;

use crate::node::NodeError;
use crate::{ApiError, ServeConfig};
use forward::{ForwardError, Forwarder};
use forward_queue::ForwardQueue;
use hakv_api::ErrorCode;
use hakv_raft::{BarrierError, HandoverError, ProposeError, RaftNode, RaftNodeConfig, RaftTiming, Rounds};
use hakv_store::{ApplyHook, Command, Outcome, StateMachine};
use hakv_tls::ClientTls;
use http::HeaderValue;
use internal::Reply;
use openraft::BasicNode;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Rounds of read-index requests to the leader (see `ClusterNode::read_index_of`).
type ReadIndexRounds = Rounds<(String, Option<HeaderValue>), Result<Reply<u64>, ForwardError>>;

/// A member with more log entries than this not yet applied reports itself not ready.
const READY_MAX_APPLY_LAG: u64 = 1000;
/// Attempts of a write or a read barrier that leaders refused before doing anything (so that
/// asking again cannot apply a command twice), within one election's wait.
const MAX_ATTEMPTS: u32 = 3;

/// The retries left to a write or read barrier that leaders refused before doing anything.
struct Retries {
    attempts: u32,
    /// One election's wait in all, from the first refusal.
    deadline: Option<tokio::time::Instant>,
}

impl Retries {
    fn new() -> Retries {
        Retries {
            attempts: 1,
            deadline: None,
        }
    }
}

/// Exit code of a member whose Raft core stopped by itself (EX_SOFTWARE).
const RAFT_FAILED_EXIT_CODE: i32 = 70;

/// A member whose Raft core stopped by itself (a storage failure: the disk failed, the log is
/// corrupt) can neither serve nor recover in place: it says why and exits non-zero, so that a
/// supervisor restarts it and operators see the cause, rather than answering 503 forever while
/// looking alive. Its log is durable; a restart recovers from it.
fn exit_when_raft_fails(raft: std::sync::Weak<RaftNode>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Some(raft) = raft.upgrade() else {
                return; // shut down
            };
            if let Some(error) = raft.fatal_error() {
                tracing::error!(%error, "the Raft core stopped; exiting");
                eprintln!("hakv serve: the Raft core stopped: {error}");
                std::process::exit(RAFT_FAILED_EXIT_CODE);
            }
        }
    });
}

/// The Raft side of a node.
pub struct ClusterNode {
    raft: Arc<RaftNode>,
    /// Read-index requests and member removals to the leader.
    forwarder: Arc<Forwarder>,
    /// This member's readers' requests for the leader's read index, one per round (each reader
    /// brings the leader's address as it knows it and its request id).
    read_indexes: Arc<ReadIndexRounds>,
    /// Writes to the leader, batched.
    forward_queue: ForwardQueue,
    /// How long a read barrier or a forwarded request may take.
    wait: Duration,
    /// How long a request waits for an election before answering 503.
    election_wait: Duration,
}

impl ClusterNode {
    /// Opens this member's storage, starts Raft, and forms the static cluster of `--peers`
    /// (idempotent: a member that already holds a log keeps it).
    /// `peer_tls`: how to call peers when members speak TLS.
    pub async fn open(
        config: &ServeConfig,
        hook: Arc<dyn ApplyHook>,
        peer_tls: Option<ClientTls>,
    ) -> Result<ClusterNode, NodeError> {
        let node_id = config.node_id.expect("validated: a cluster member has an id");
        let token = config
            .cluster_token
            .clone()
            .expect("validated: a cluster has a token");
        let mut raft_config = RaftNodeConfig::new(node_id, config.data_dir.clone(), token.clone());
        let heartbeat = config.heartbeat.as_millis() as u64;
        let election = config.election_timeout.as_millis() as u64;
        raft_config.timing = RaftTiming {
            heartbeat_ms: heartbeat,
            // openraft's lease is its longest election timeout; see RaftTiming.
            election_timeout_min_ms: election / 2,
            election_timeout_max_ms: election,
            leader_stall_ms: config.leader_stall_timeout.as_millis() as u64,
        };
        raft_config.snapshot_every_entries = config.snapshot_every;
        raft_config.peer_client.snapshot_bytes_per_second = config.snapshot_rate;
        raft_config.peer_client.tls = peer_tls.clone();
        raft_config.proposer.queue_capacity = config.write_queue;
        raft_config.block_cache_bytes = config.store_cache_bytes;
        raft_config.disk_reserve = config.disk_reserve;
        raft_config.lease_reads = config.lease_reads;
        // Members reach each other, and forward requests, at the address --peers gives,
        // resolved at each new connection.
        raft_config.advertise_addr = config.own_peer().map(|p| p.addr);
        for peer in &config.peers {
            if tokio::net::lookup_host(peer.addr.as_str()).await.is_err() {
                tracing::warn!(
                    peer = peer.id,
                    addr = %peer.addr,
                    "the peer's name does not resolve (yet); it is looked up again at each connection"
                );
            }
        }
        let mut raft = RaftNode::open(raft_config, hook)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let members: BTreeMap<u64, BasicNode> = config
            .peers
            .iter()
            .map(|p| (p.id, BasicNode::new(p.addr.clone())))
            .collect();
        // A member of a static cluster knows its cluster's id from its flags: the same on
        // every member started with these --peers and this secret (a joining member learns it
        // from its peers instead).
        if !config.join {
            raft.adopt_cluster_id(&hakv_raft::cluster_id_for(&token, &members));
        }
        // A data directory of another cluster is refused before this member serves anything.
        raft.check_peer_identities(&members)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        // A joining member must not form a cluster of its own: its first log entry would
        // carry a different membership under the same log id as the cluster's.
        raft.spawn_bootstrap(members, !config.join);
        let raft = Arc::new(raft);
        exit_when_raft_fails(Arc::downgrade(&raft));
        let wait = config.request_timeout;
        Ok(ClusterNode {
            raft,
            forwarder: Arc::new(Forwarder::new(&token, wait, peer_tls.as_ref())),
            read_indexes: Arc::default(),
            forward_queue: ForwardQueue::start(Forwarder::new(&token, wait, peer_tls.as_ref())),
            wait,
            // The lease plus up to a third (the election watch), a failed election's retry
            // after up to one more timeout, and the good election after it.
            election_wait: config.election_timeout * 4,
        })
    }

    pub fn state_machine(&self) -> &Arc<StateMachine> {
        self.raft.state()
    }

    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// Writes waiting here: for a log entry (on the leader) or to be forwarded to it.
    pub fn write_queue_depth(&self) -> usize {
        self.raft.proposal_queue_depth() + self.forward_queue.depth()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.leader() == Some(self.raft.id())
    }

    /// Ready: a leader is known and heard from, this member has applied nearly all of its
    /// log (a member catching up would answer reads slowly), is not installing a snapshot nor
    /// catching up after starting with an empty log, and, when it leads, it hears from a
    /// majority. `Some(why)` when it is not.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        let apply_lag = {
            let metrics = self.raft.raft().metrics();
            let metrics = metrics.borrow();
            let applied = metrics.last_applied.map_or(0, |id| id.index);
            metrics.last_log_index.unwrap_or(0).saturating_sub(applied)
        };
        if self.raft.core_is_stuck() {
            return Some(
                "the Raft core has published nothing for the stall timeout (a stalled disk or a starved core)",
            );
        }
        if self.raft.is_catching_up() {
            return Some("this member started with an empty log and is catching up with the leader");
        }
        if self.state_machine().is_installing() {
            return Some("this member is installing a snapshot");
        }
        if apply_lag > READY_MAX_APPLY_LAG {
            return Some("this member has more than 1000 log entries not applied yet");
        }
        match self.raft.leader() {
            None => Some("no leader is known"),
            Some(leader) if leader == self.raft.id() => (!self.raft.leader_has_quorum())
                .then_some("this leader has not heard from a majority recently"),
            Some(_) => (!self.raft.hears_from_leader())
                .then_some("this member has not heard from its leader recently"),
        }
    }

    /// Applies `command` through the log, wherever the leader is. When no leader is known,
    /// the known one cannot be reached or refuses before proposing, or this member leads
    /// without a recent majority (just elected, or about to learn it was deposed) — all cases
    /// where the command surely was not applied — it waits for a usable leader and tries
    /// again, up to [`MAX_ATTEMPTS`] times within one election's wait: clients see a latency
    /// blip, not an error. More than once, because a handover can refuse twice in a row (the
    /// old leader handing over, then its successor in the moment before a majority has
    /// acknowledged it: the likely reading of one failure of
    /// `removing_the_leader_hands_over_first_and_fails_no_write`).
    pub async fn write(&self, command: Command) -> Result<Outcome, ApiError> {
        let me = self.raft.id();
        let mut retries = Retries::new();
        loop {
            let (failed_leader, err) = match self.raft.propose(command.clone()).await {
                Ok(outcome) => return Ok(outcome),
                Err(ProposeError::NotLeader {
                    leader: Some((id, addr)),
                }) => {
                    metrics::counter!("hakv_cluster_forwarded_writes_total").increment(1);
                    match self.forward_queue.propose(&addr, command.clone()).await {
                        // The leader refused before proposing (it stepped down, lost its
                        // majority, or is handing over): safe to try at the next leader.
                        Ok(Err(
                            err @ ApiError::Relayed {
                                code: ErrorCode::Unavailable,
                                ..
                            },
                        )) => (Some(id), err),
                        Ok(answer) => return answer,
                        Err(err @ ForwardError::NotSent(_)) => (Some(id), forward_error(err)),
                        Err(err) => return Err(forward_error(err)),
                    }
                }
                Err(err @ ProposeError::NotLeader { leader: None }) => (None, propose_error(err)),
                Err(err @ (ProposeError::HandingOver | ProposeError::NoQuorum)) => {
                    (Some(me), propose_error(err))
                }
                Err(err) => return Err(propose_error(err)),
            };
            if !self.retry_after_refusal(&mut retries, failed_leader).await {
                return Err(err);
            }
        }
    }

    /// Waits until this replica reflects every write acknowledged before the call: the
    /// leader confirms its leadership and names a read index; this node waits to apply it.
    /// Like writes, it waits out one election when no leader can be asked.
    pub async fn read_barrier(&self) -> Result<(), ApiError> {
        let me = self.raft.id();
        let mut retries = Retries::new();
        loop {
            let (failed_leader, err) = match self.raft.linearizable_barrier(self.wait).await {
                Ok(_) => return Ok(()),
                Err(BarrierError::NotLeader {
                    leader: Some((id, addr)),
                }) => {
                    match self.read_index_of(&addr).await {
                        Ok(Ok(index)) => {
                            return self
                                .raft
                                .wait_applied(index, self.wait)
                                .await
                                .map_err(barrier_error);
                        }
                        // The leader could not confirm itself (just elected, or deposed).
                        Ok(Err(
                            err @ ApiError::Relayed {
                                code: ErrorCode::Unavailable,
                                ..
                            },
                        )) => (Some(id), err),
                        Ok(Err(err)) => return Err(err),
                        // A read changes nothing, so even a request that may have reached the
                        // leader can be asked again of the next one.
                        Err(err) => (Some(id), read_forward_error(err)),
                    }
                }
                Err(err @ BarrierError::NotLeader { leader: None }) => (None, barrier_error(err)),
                Err(err @ BarrierError::NoQuorum) => (Some(me), barrier_error(err)),
                Err(err) => return Err(barrier_error(err)),
            };
            if !self.retry_after_refusal(&mut retries, failed_leader).await {
                return Err(err);
            }
        }
    }

    /// Whether to try a refused request again: true once a usable leader is known, unless the
    /// attempts or the one election's wait are used up.
    async fn retry_after_refusal(&self, retries: &mut Retries, failed: Option<u64>) -> bool {
        if retries.attempts == MAX_ATTEMPTS {
            return false;
        }
        retries.attempts += 1;
        let deadline = *retries
            .deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + self.election_wait);
        self.wait_for_usable_leader(failed, deadline).await
    }

    /// Waits (until `deadline`) until this member knows a leader other than `failed`, or
    /// leads itself with a recent majority acknowledgement and is not handing leadership
    /// over; false if neither happened in time.
    async fn wait_for_usable_leader(&self, failed: Option<u64>, deadline: tokio::time::Instant) -> bool {
        let me = self.raft.id();
        let mut metrics = self.raft.raft().metrics();
        let usable = metrics.wait_for(|m| match m.current_leader {
            Some(leader) if leader == me => self.raft.leads_with_quorum_in(m) && !self.raft.is_handing_over(),
            Some(leader) => Some(leader) != failed,
            None => false,
        });
        matches!(tokio::time::timeout_at(deadline, usable).await, Ok(Ok(_)))
    }

    /// Removes this member, which leads: hands leadership to the most caught-up voter, then
    /// asks the new leader to remove it and returns that answer (status and body).
    pub async fn remove_self(&self) -> Result<(http::StatusCode, bytes::Bytes), ApiError> {
        let me = self.raft.id();
        let successor = self
            .raft
            .hand_over_leadership(None, self.wait)
            .await
            .map_err(|err| match err {
                HandoverError::NoSuccessor(why) => ApiError::MembershipRefused(why),
                other => ApiError::Unavailable(other.to_string()),
            })?;
        let addr = self
            .raft
            .status()
            .leader
            .filter(|leader| leader.id == successor)
            .map(|leader| leader.addr)
            .ok_or_else(|| ApiError::Unavailable("leadership moved on again; retry".into()))?;
        self.forwarder
            .remove_member(&addr, me)
            .await
            .map_err(|err| match err {
                ForwardError::NotSent(why) => {
                    ApiError::Unavailable(format!("could not reach the new leader to remove {me}: {why}"))
                }
                ForwardError::Unknown(why) => {
                    ApiError::OutcomeUnknown(format!("asking the new leader to remove {me}: {why}"))
                }
            })
    }

    /// The leader side of a forwarded write: never forwards again (no loops).
    pub async fn propose_here(&self, command: Command) -> Result<Outcome, ApiError> {
        self.propose_locally(command).await.map_err(propose_error)
    }

    /// Proposes here. A leader without a recent majority acknowledgement (typically one
    /// elected a moment ago) refuses before anything is appended, so waiting for its quorum
    /// once and proposing again is safe.
    async fn propose_locally(&self, command: Command) -> Result<Outcome, ProposeError> {
        match self.raft.propose(command.clone()).await {
            Err(ProposeError::NoQuorum) if self.wait_for_quorum().await => self.raft.propose(command).await,
            other => other,
        }
    }

    /// Waits (bounded) until this member leads with a majority; false if it stops leading
    /// or the time is up.
    async fn wait_for_quorum(&self) -> bool {
        self.raft.wait_for_quorum(self.election_wait).await
    }

    /// The read index of the leader at `leader`, asked in the next round this member sends
    /// for its readers: under load, one request to the leader serves many reads.
    async fn read_index_of(&self, leader: &str) -> Result<Result<u64, ApiError>, ForwardError> {
        let forwarder = self.forwarder.clone();
        let round = move |readers: Vec<(String, Option<HeaderValue>)>| {
            let forwarder = forwarder.clone();
            async move {
                // Readers may name different leaders around an election: ask the one the
                // latest knew of. Any member that confirms its leadership after they all
                // arrived gives an index good for all of them; a deposed one refuses (503).
                let leader = readers
                    .last()
                    .map(|(leader, _)| leader.as_str())
                    .unwrap_or_default();
                let ids: Vec<Option<&HeaderValue>> = readers.iter().map(|(_, id)| id.as_ref()).collect();
                metrics::counter!("hakv_cluster_read_index_requests_total").increment(1);
                forwarder.read_index(leader, &ids).await
            }
        };
        metrics::counter!("hakv_cluster_forwarded_reads_total").increment(1);
        let reader = (leader.to_owned(), crate::limits::current_request_id());
        let answer = self.read_indexes.join(reader, round).await;
        let answer = answer.unwrap_or_else(|| Err(ForwardError::NotSent("the node is shutting down".into())));
        answer.map(Reply::into_result)
    }

    /// The leader side of a follower's read barrier: the index the follower must apply.
    pub async fn read_index_here(&self) -> Result<u64, ApiError> {
        self.barrier_here().await.map_err(barrier_error)
    }

    /// A read barrier here. Like a proposal, a barrier on a leader elected a moment ago
    /// (no majority acknowledgement yet) waits for its first one instead of failing.
    async fn barrier_here(&self) -> Result<u64, BarrierError> {
        match self.raft.linearizable_barrier(self.wait).await {
            Err(BarrierError::NoQuorum) if self.wait_for_quorum().await => {
                self.raft.linearizable_barrier(self.wait).await
            }
            other => other,
        }
    }

    pub async fn shutdown(self) {
        // The failure watch holds only a weak reference, so this is the last strong one.
        let Ok(raft) = Arc::try_unwrap(self.raft) else {
            tracing::error!("the Raft member is still referenced; its log is durable, skipping its shutdown");
            return;
        };
        if let Err(err) = raft.shutdown().await {
            tracing::error!(error = %err, "raft did not shut down cleanly");
        }
    }
}

fn propose_error(err: ProposeError) -> ApiError {
    match err {
        ProposeError::NotLeader { .. } => ApiError::Unavailable("no leader is known; retry shortly".into()),
        ProposeError::Overloaded => ApiError::Overloaded("queued writes"),
        ProposeError::NoQuorum => {
            ApiError::Unavailable("the leader cannot reach a majority of the cluster".into())
        }
        ProposeError::ShuttingDown => ApiError::Unavailable("the node is shutting down".into()),
        ProposeError::HandingOver => {
            ApiError::Unavailable("leadership is being handed over; retry shortly".into())
        }
        ProposeError::Unknown(why) => ApiError::OutcomeUnknown(why),
        ProposeError::DiskFull => ApiError::DiskFull,
    }
}

fn barrier_error(err: BarrierError) -> ApiError {
    match err {
        BarrierError::NotLeader { .. } => ApiError::Unavailable("no leader is known; retry shortly".into()),
        BarrierError::NoQuorum => {
            ApiError::Unavailable("the leader cannot reach a majority of the cluster".into())
        }
        BarrierError::Timeout => ApiError::Timeout,
        BarrierError::ShuttingDown => ApiError::Unavailable("the node is shutting down".into()),
    }
}

fn read_forward_error(err: ForwardError) -> ApiError {
    match err {
        ForwardError::NotSent(why) | ForwardError::Unknown(why) => {
            ApiError::Unavailable(format!("the leader cannot confirm the read: {why}"))
        }
    }
}

fn forward_error(err: ForwardError) -> ApiError {
    match err {
        ForwardError::NotSent(why) => ApiError::Unavailable(format!("the leader cannot be reached: {why}")),
        ForwardError::Unknown(why) => ApiError::OutcomeUnknown(format!("forwarding to the leader: {why}")),
    }
}
