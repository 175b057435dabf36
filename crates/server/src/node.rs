//! A running node's parts in one place: configuration, state machine, read cache, request
//! limits, and how writes reach the disk: a group-commit writer on a single node, the Raft
//! log in a cluster. Handlers hold an `Arc<Node>`.

use crate::cache_hook::{CacheHook, CachedValue, ValueCache};
use crate::cluster::ClusterNode;
use crate::{ApiError, ServeConfig};
use hakv_store::{
    Command, DiskSpace, Op, Outcome, StateMachine, StoreConfig, StoreError, Writer, WriterConfig,
};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Node {
    pub config: ServeConfig,
    pub state_machine: Arc<StateMachine>,
    pub cache: Arc<ValueCache>,
    /// Requests being served now (admission control in `limits`).
    pub in_flight: AtomicUsize,
    /// Memory held by scan pages (`--scan-memory`).
    pub scan_budget: crate::scan_budget::ScanBudget,
    /// Free space of the data directory; writes are refused (507) while it is below the
    /// reserve (`hakv_store::DiskSpace`).
    pub disk: Arc<DiskSpace>,
    /// Ids of requests that come without one (`X-Request-Id`, in `limits`).
    pub request_ids: hakv_api::RequestIds,
    /// This single node's clock (`clock_ms`): the wall clock, never going backward.
    clock: hakv_store::Clock,
    replication: Replication,
}

/// How writes become durable.
enum Replication {
    /// One node: the group-commit writer thread fsyncs batches of writes.
    Single {
        writer: Writer,
        thread: Mutex<Option<JoinHandle<()>>>,
    },
    /// A Raft member: writes go through the replicated log.
    Cluster(Arc<ClusterNode>),
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot open the store in {dir}: {source}")]
    OpenStore {
        dir: std::path::PathBuf,
        source: StoreError,
    },
    #[error("cannot start the Raft member: {0}")]
    Raft(String),
    #[error("TLS: {0}")]
    Tls(#[from] hakv_tls::TlsError),
    #[error("cannot watch the free space of {dir}: {source}")]
    DiskSpace {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Node {
    /// Opens the store in `config.data_dir` (recovering whatever is there) and starts the
    /// writer thread, or, with `--peers`, the Raft member (which calls its peers with
    /// `peer_tls` when members speak TLS).
    pub async fn open(
        config: ServeConfig,
        peer_tls: Option<hakv_tls::ClientTls>,
    ) -> Result<Arc<Node>, NodeError> {
        let cache = Arc::new(ValueCache::new(config.cache_config()));
        let hook = Arc::new(CacheHook(cache.clone()));
        let (state_machine, disk, replication) = if config.is_clustered() {
            let cluster = ClusterNode::open(&config, hook, peer_tls).await?;
            (
                cluster.state_machine().clone(),
                cluster.raft().disk_space().clone(),
                Replication::Cluster(Arc::new(cluster)),
            )
        } else {
            let store_config = StoreConfig::new(config.data_dir.clone(), config.store_cache_bytes);
            let state_machine =
                Arc::new(
                    StateMachine::open(&store_config).map_err(|source| NodeError::OpenStore {
                        dir: config.data_dir.clone(),
                        source,
                    })?,
                );
            let writer_config = WriterConfig {
                queue_capacity: config.write_queue,
                ..WriterConfig::default()
            };
            let (writer, thread) = Writer::start(state_machine.clone(), hook, writer_config);
            let disk = DiskSpace::watch(&config.data_dir, config.disk_reserve).map_err(|source| {
                NodeError::DiskSpace {
                    dir: config.data_dir.clone(),
                    source,
                }
            })?;
            (
                state_machine,
                disk,
                Replication::Single {
                    writer,
                    thread: Mutex::new(Some(thread)),
                },
            )
        };
        let scan_budget = crate::scan_budget::ScanBudget::new(config.scan_memory);
        Ok(Arc::new(Node {
            config,
            state_machine,
            cache,
            in_flight: AtomicUsize::new(0),
            scan_budget,
            disk,
            request_ids: hakv_api::RequestIds::default(),
            clock: hakv_store::Clock::default(),
            replication,
        }))
    }

    /// The cluster member, when this node is one.
    pub fn cluster(&self) -> Option<&Arc<ClusterNode>> {
        match &self.replication {
            Replication::Cluster(cluster) => Some(cluster),
            Replication::Single { .. } => None,
        }
    }

    /// Makes the next local read linearizable: a no-op on a single node (every acknowledged
    /// write is applied before it is acknowledged); a read barrier in a cluster.
    pub async fn read_barrier(&self) -> Result<(), ApiError> {
        match &self.replication {
            Replication::Single { .. } => Ok(()),
            Replication::Cluster(cluster) => cluster.read_barrier().await,
        }
    }

    /// The time that decides expiry for reads here, in Unix ms; it never goes backward.
    /// - Single node: its wall clock, kept running at the monotonic clock's pace if it is
    ///   stepped back (`hakv_store::Clock`), so keys expire exactly on time.
    /// - Cluster member: the state's clock, the leader's time as of the last applied entry,
    ///   so every member sees a key expire at the same point of the log, whatever its own
    ///   clock says. The leader's purge puts the expiry into the log when a key is due.
    pub fn clock_ms(&self) -> u64 {
        let state = self.state_machine.clock_ms();
        match &self.replication {
            Replication::Single { .. } => self.clock.now_ms().max(state),
            Replication::Cluster(_) => state,
        }
    }

    /// The time a write ordered here now would take effect at: the node's clock on a single
    /// node; on a leader, the stamp `RaftNode::propose` would give.
    pub fn write_clock_ms(&self) -> u64 {
        match &self.replication {
            Replication::Single { .. } => self.clock_ms(),
            Replication::Cluster(cluster) => cluster.raft().proposal_clock_ms(),
        }
    }

    /// The live value of `key`, from the cache or else from the local state machine.
    pub fn read(&self, key: &str) -> Result<Option<Arc<CachedValue>>, ApiError> {
        let now = self.clock_ms();
        if let Some(value) = self.cache.get(key) {
            return Ok(value.is_live_at(now).then_some(value));
        }
        // Load the applied revision before reading: the value read is at least this new,
        // which is what `fill` needs to know to refuse a fill that lost a race with a write.
        let read_stamp = self.state_machine.revision().0;
        let Some(record) = self.state_machine.get(key).map_err(unavailable)? else {
            return Ok(None);
        };
        if !record.is_live_at(now) {
            return Ok(None);
        }
        let value = Arc::new(CachedValue::from_record(&record));
        self.cache
            .fill(key.to_owned(), value.clone(), value.weight(key), read_stamp);
        Ok(Some(value))
    }

    /// Applies one change durably (on a majority, in a cluster), stamped with the time it is
    /// ordered at (`write_clock_ms`; by the leader in a cluster). Refused at once (507, nothing written) while the disk that would take it first
    /// is nearly full: this node's when it is alone, the leader's in a cluster.
    pub async fn write(&self, op: Op) -> Result<Outcome, ApiError> {
        // Stamped again by the leader in a cluster (`RaftNode::propose`).
        let command = Command {
            at_ms: self.write_clock_ms(),
            op,
        };
        match &self.replication {
            Replication::Single { writer, .. } => {
                if self.disk.is_low() {
                    metrics::counter!("hakv_writes_refused_disk_full_total").increment(1);
                    return Err(ApiError::DiskFull);
                }
                Ok(writer.propose(command).await?)
            }
            Replication::Cluster(cluster) => cluster.write(command).await,
        }
    }

    /// Writes waiting: for the group-commit writer (single node), for a Raft log entry or
    /// to be forwarded to the leader (cluster member).
    pub fn write_queue_depth(&self) -> usize {
        match &self.replication {
            Replication::Single { writer, .. } => writer.queue_depth(),
            Replication::Cluster(cluster) => cluster.write_queue_depth(),
        }
    }

    /// Whether this node should run leader-only chores (purging expired keys).
    pub fn leads(&self) -> bool {
        match &self.replication {
            Replication::Single { .. } => true,
            Replication::Cluster(cluster) => cluster.is_leader(),
        }
    }

    /// Why this node cannot serve reads and writes now, if it cannot: its store failed (a
    /// single node), or the reasons of `ClusterNode::not_ready_because`.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        match &self.replication {
            Replication::Single { writer, .. } => {
                (!writer.is_healthy()).then_some("the store has failed; see the node's log")
            }
            Replication::Cluster(cluster) => cluster.not_ready_because(),
        }
    }

    /// Takes what must be stopped after the last request: the writer thread's handle (to
    /// join once every `Writer` clone is gone) or the Raft member.
    pub(crate) fn take_stoppable(&self) -> Stoppable {
        match &self.replication {
            Replication::Single { thread, .. } => {
                Stoppable::WriterThread(thread.lock().expect("writer thread lock").take())
            }
            Replication::Cluster(cluster) => Stoppable::Cluster(cluster.clone()),
        }
    }
}

pub(crate) enum Stoppable {
    WriterThread(Option<JoinHandle<()>>),
    Cluster(Arc<ClusterNode>),
}

pub(crate) fn unavailable(err: StoreError) -> ApiError {
    ApiError::Unavailable(format!("storage read failed: {err}"))
}
