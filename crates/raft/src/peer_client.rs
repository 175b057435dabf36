//! Client side of the peer transport: openraft's `RaftNetworkFactory`/`RaftNetwork` over HTTP
//! with one pooled keep-alive hyper client per node, bounded by timeouts, authenticated with
//! the cluster token.
//!
//! Append bodies are bincode, vote bodies JSON, and a snapshot goes whole as bytes (see
//! [`crate::peer_server`] for the wire format). A refused connection is reported as `Unreachable` (openraft then
//! backs off), a timeout as `Timeout`, and anything else as a network error.

use crate::config::PeerClientConfig;
use crate::peer_server::{
    APPEND_PATH, CAMPAIGN_PATH, PRE_VOTE_PATH, SNAPSHOT_PATH, SnapshotHeader, VOTE_PATH, encode_snapshot_body,
};
use crate::pre_vote::{PreVoteRequest, PreVoteResponse};
use crate::{NodeId, TypeConfig};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, Snapshot, Vote};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;

type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

/// Why a peer call failed before the peer could answer it.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot connect to peer: {0}")]
    Connect(#[source] hyper_util::client::legacy::Error),
    #[error("peer request failed: {0}")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("reading the peer's answer failed: {0}")]
    Body(#[source] hyper::Error),
    #[error("the peer answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("undecodable peer message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("hakv sends snapshots whole, never in chunks")]
    ChunkedSnapshot,
}

/// Creates connections to peers; every connection shares one connection pool.
#[derive(Clone)]
pub struct PeerNetwork {
    node_id: NodeId,
    client: Client<HttpConnector, Full<Bytes>>,
    authorization: HeaderValue,
    config: Arc<PeerClientConfig>,
}

impl PeerNetwork {
    pub fn new(node_id: NodeId, cluster_token: &str, config: PeerClientConfig) -> PeerNetwork {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector);
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {cluster_token}")).expect("a token is visible ASCII");
        authorization.set_sensitive(true);
        PeerNetwork {
            node_id,
            client,
            authorization,
            config: Arc::new(config),
        }
    }
}

impl PeerNetwork {
    /// Asks the member at `addr` to start an election now (leadership handover).
    pub(crate) async fn campaign(&self, target: NodeId, addr: &str) -> Result<(), PeerError> {
        let connection = PeerConnection {
            network: self.clone(),
            target,
            base: format!("http://{addr}"),
        };
        let request = connection.post(CAMPAIGN_PATH, Vec::new(), "application/json");
        match tokio::time::timeout(self.config.request_timeout, request).await {
            Ok(answer) => answer.map(|_| ()),
            Err(_) => Err(PeerError::Status {
                status: StatusCode::GATEWAY_TIMEOUT,
                body: "no answer in time".into(),
            }),
        }
    }
}

impl PeerNetwork {
    /// Asks the voter at `addr` whether it would vote for `request` (no state changes there).
    pub(crate) async fn pre_vote(
        &self,
        target: NodeId,
        addr: &str,
        request: &PreVoteRequest,
    ) -> Result<PreVoteResponse, PeerError> {
        let connection = PeerConnection {
            network: self.clone(),
            target,
            base: format!("http://{addr}"),
        };
        let body = serde_json::to_vec(request)?;
        let answer = connection.post(PRE_VOTE_PATH, body, "application/json").await?;
        Ok(serde_json::from_slice(&answer)?)
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        PeerConnection {
            network: self.clone(),
            target,
            base: format!("http://{}", node.addr),
        }
    }
}

/// Calls to one peer.
pub struct PeerConnection {
    network: PeerNetwork,
    target: NodeId,
    base: String,
}

impl PeerConnection {
    async fn post(&self, path: &str, body: Vec<u8>, content_type: &'static str) -> Result<Bytes, PeerError> {
        let request = Request::post(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, self.network.authorization.clone())
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a well-formed request");
        let response = self.network.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                PeerError::Connect(e)
            } else {
                PeerError::Request(e)
            }
        })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(PeerError::Body)?
            .to_bytes();
        if status != StatusCode::OK {
            let body = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            return Err(PeerError::Status { status, body });
        }
        Ok(body)
    }

    /// One call with an encoded request (`body`, of `content_type`), answered with openraft's
    /// `Result<Resp, RaftError<E>>` as JSON.
    async fn call<Resp, E>(
        &self,
        path: &str,
        action: RPCTypes,
        (body, content_type): (Vec<u8>, &'static str),
        option: &RPCOption,
    ) -> Result<Resp, RpcError<E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = self.network.config.request_timeout.min(option.hard_ttl());
        let answer = match tokio::time::timeout(timeout, self.post(path, body, content_type)).await {
            Ok(answer) => answer,
            Err(_) => {
                count_error(action);
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.network.node_id,
                    target: self.target,
                    timeout,
                }));
            }
        };
        let decoded = answer.and_then(|bytes| {
            Ok(serde_json::from_slice::<Result<Resp, RaftError<NodeId, E>>>(
                &bytes,
            )?)
        });
        match decoded {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            Err(e) => {
                count_error(action);
                Err(transport_error(e))
            }
        }
    }
}

fn count_error(action: RPCTypes) {
    metrics::counter!("hakv_raft_peer_rpc_errors_total", "rpc" => action.to_string()).increment(1);
}

fn transport_error<E: std::error::Error>(e: PeerError) -> RpcError<E> {
    match e {
        PeerError::Connect(_) => RPCError::Unreachable(Unreachable::new(&e)),
        other => RPCError::Network(NetworkError::new(&other)),
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        // Binary: openraft 0.9 gives an append one heartbeat interval, and JSON would escape
        // every value's canonical text a second time and parse it back on the follower.
        let body = bincode::serialize(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call(
            APPEND_PATH,
            RPCTypes::AppendEntries,
            (body, "application/octet-stream"),
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        let body = serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call(VOTE_PATH, RPCTypes::Vote, (body, "application/json"), &option)
            .await
    }

    /// Never used: [`full_snapshot`](Self::full_snapshot) is overridden to send snapshots
    /// whole, so openraft's chunked transfer (which calls this) does not run.
    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        Err(RPCError::Unreachable(Unreachable::new(
            &PeerError::ChunkedSnapshot,
        )))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let header = SnapshotHeader {
            vote,
            meta: snapshot.meta,
        };
        let body = encode_snapshot_body(&header, snapshot.snapshot.get_ref())
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let timeout = self.network.config.snapshot_timeout;
        let send = tokio::time::timeout(
            timeout,
            self.post(SNAPSHOT_PATH, body, "application/octet-stream"),
        );
        let answer = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            answer = send => answer,
        };
        let Ok(answer) = answer else {
            count_error(RPCTypes::InstallSnapshot);
            return Err(StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.network.node_id,
                target: self.target,
                timeout,
            }));
        };
        let decoded = answer.and_then(|bytes| {
            Ok(serde_json::from_slice::<
                Result<SnapshotResponse<NodeId>, Fatal<NodeId>>,
            >(&bytes)?)
        });
        match decoded {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(fatal)) => Err(StreamingError::RemoteError(RemoteError::new(self.target, fatal))),
            Err(e) => {
                count_error(RPCTypes::InstallSnapshot);
                Err(match e {
                    PeerError::Connect(_) => StreamingError::Unreachable(Unreachable::new(&e)),
                    other => StreamingError::Network(NetworkError::new(&other)),
                })
            }
        }
    }
}
