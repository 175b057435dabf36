//! A running Raft node: storage opened, openraft started, and the peer endpoints served on a
//! listener. The server crate will later serve [`peer_server::router`] on its own listener
//! instead; this helper is what tests and tools use until then.

use crate::config::RaftNodeConfig;
use crate::peer_client::PeerNetwork;
use crate::peer_server::{self, PeerAuth};
use crate::{LogStore, NodeId, Raft, RaftStoreError, StateMachineStore};
use hakv_store::{ApplyHook, Command, Outcome, StateMachine, StoreConfig};
use openraft::BasicNode;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long shutdown waits for in-flight peer requests before dropping them.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid raft configuration: {0}")]
    Config(#[from] Box<openraft::ConfigError>),
    #[error("storage: {0}")]
    Storage(#[from] RaftStoreError),
    #[error("the peer listener failed: {0}")]
    Listener(#[from] std::io::Error),
    #[error("raft failed to start or stop: {0}")]
    Fatal(#[from] openraft::error::Fatal<NodeId>),
    #[error("initializing the cluster failed: {0}")]
    Initialize(#[from] RaftError<NodeId, InitializeError<NodeId, BasicNode>>),
    /// Not applied here; may include "this node is not the leader" with a hint where it is.
    #[error("write failed: {0}")]
    Write(#[from] RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>),
}

pub struct RaftNode {
    id: NodeId,
    raft: Raft,
    state: Arc<StateMachine>,
    addr: SocketAddr,
    auth: Arc<PeerAuth>,
    stop_http: watch::Sender<bool>,
    http: JoinHandle<()>,
}

impl RaftNode {
    /// Opens the node's storage under `config.data_dir`, starts Raft and serves the peer
    /// endpoints on `listener`. The node joins a cluster once some node
    /// [initializes](Self::initialize) one that includes it.
    pub async fn start(
        config: RaftNodeConfig,
        listener: TcpListener,
        hook: Arc<dyn ApplyHook>,
    ) -> Result<RaftNode, NodeError> {
        let raft_config = Arc::new(config.openraft_config()?);
        let log = LogStore::open(&config.data_dir.join("raft-log"))?;
        let state = Arc::new(
            StateMachine::open(&StoreConfig {
                data_dir: config.data_dir.join("state"),
                block_cache_bytes: config.block_cache_bytes,
            })
            .map_err(RaftStoreError::from)?,
        );
        let state_machine = StateMachineStore::open(state.clone(), hook, config.data_dir.join("snapshot"))?;
        let network = PeerNetwork::new(config.node_id, &config.cluster_token, config.peer_client.clone());
        let raft = Raft::new(config.node_id, raft_config, network, log, state_machine).await?;

        let auth = Arc::new(PeerAuth::new(&config.cluster_token));
        let app = peer_server::router(raft.clone(), auth.clone(), config.peer_limits);
        let addr = listener.local_addr()?;
        let (stop_http, mut stopped) = watch::channel(false);
        let http = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "peer listener failed");
            }
        });
        Ok(RaftNode {
            id: config.node_id,
            raft,
            state,
            addr,
            auth,
            stop_http,
            http,
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Where peers reach this node.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This node as a cluster member.
    pub fn member(&self) -> BasicNode {
        BasicNode::new(self.addr.to_string())
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The local replica (stale reads; linearizable reads need `ensure_linearizable` first).
    pub fn state(&self) -> &Arc<StateMachine> {
        &self.state
    }

    /// Peer requests refused for a missing or wrong cluster token.
    pub fn rejected_peer_requests(&self) -> u64 {
        self.auth.rejected()
    }

    /// The current leader as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Forms a cluster of `members`. Calling it again, or on a node that already holds a log,
    /// is not an error: initialization happens once, whoever calls it first.
    pub async fn initialize(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<(), NodeError> {
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Proposes `command` and waits until it is committed and applied here (this node must
    /// be the leader; otherwise the error names the leader).
    pub async fn write(&self, command: Command) -> Result<Outcome, NodeError> {
        Ok(self.raft.client_write(command).await?.data)
    }

    /// Stops serving peers, stops Raft, and flushes the state machine, in that order: no
    /// request is handled by a half-stopped node, and what was applied is on disk at exit.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.stop_http.send(true);
        let mut http = self.http;
        if tokio::time::timeout(HTTP_DRAIN_TIMEOUT, &mut http).await.is_err() {
            // Peers keep pooled connections open; do not let them hold the shutdown.
            http.abort();
        }
        let stopped = self.raft.shutdown().await;
        if let Err(e) = stopped {
            tracing::error!(error = %e, "raft did not stop cleanly");
        }
        self.state.persist().map_err(RaftStoreError::from)?;
        Ok(())
    }
}
