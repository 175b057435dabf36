//! Client side of the peer transport: openraft's `RaftNetworkFactory`/`RaftNetwork` over HTTP
//! with one pooled keep-alive hyper client per node, bounded by timeouts, authenticated with
//! the cluster token.
//!
//! Append bodies are bincode, vote bodies JSON, and a snapshot file is streamed in
//! checksummed frames, paced, from disk (`crate::snapshot_transfer`). A refused connection is
//! reported as `Unreachable` (openraft then backs off), a timeout as `Timeout`, and anything
//! else as a network error.

use crate::config::PeerClientConfig;
use crate::lease::Lease;
use crate::peer_server::{
    APPEND_PATH, CAMPAIGN_PATH, IDENTITY_PATH, PRE_VOTE_PATH, PeerIdentity, SNAPSHOT_PATH, VOTE_PATH,
};
use crate::peer_trouble::PeerTrouble;
use crate::pre_vote::{PreVoteRequest, PreVoteResponse};
use crate::snapshot_data::SnapshotData;
use crate::snapshot_transfer::{self, FRAME, SnapshotHeader};
use crate::{NodeId, TypeConfig};
use bytes::Bytes;
use hakv_tls::Connector;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, Snapshot, Vote};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    #[error("hakv streams snapshots itself, never through openraft's chunks")]
    ChunkedSnapshot,
    #[error("reading the snapshot file: {0}")]
    SnapshotFile(#[source] std::io::Error),
    #[error("the peer took no snapshot frame for {0:?}")]
    SnapshotStalled(std::time::Duration),
}

/// Creates connections to peers; every connection shares one connection pool.
#[derive(Clone)]
pub struct PeerNetwork {
    node_id: NodeId,
    client: Client<Connector, Full<Bytes>>,
    /// Snapshot transfers stream their body, so they use a client (and pool) of their own.
    snapshot_client: Client<Connector, ChannelBody>,
    /// `http` or `https`, for every peer alike.
    scheme: &'static str,
    authorization: HeaderValue,
    config: Arc<PeerClientConfig>,
    /// Each peer's failure log, shared by every connection to it (openraft's replication,
    /// pre-votes, handover calls), so its warnings are rate-limited per peer.
    troubles: Arc<Mutex<HashMap<NodeId, Arc<PeerTrouble>>>>,
    /// Where accepted appends are recorded, for the leader's read lease.
    lease: Arc<Lease>,
    /// Snapshots being sent (and installed by their receivers) now; the checkpoint policy
    /// holds the log for them (`snapshot_policy`).
    snapshots_sending: Arc<AtomicUsize>,
}

impl PeerNetwork {
    /// When this node last served a client (its snapshot transfers are paced meanwhile).
    pub(crate) fn client_activity(&self) -> &Arc<crate::ClientActivity> {
        &self.config.client_activity
    }

    /// Whether a snapshot is being sent to a member, or installed by it, now.
    pub(crate) fn is_sending_a_snapshot(&self) -> bool {
        self.snapshots_sending.load(Ordering::Relaxed) > 0
    }

    pub fn new(
        node_id: NodeId,
        cluster_token: &str,
        config: PeerClientConfig,
        lease: Arc<Lease>,
    ) -> PeerNetwork {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let connector = hakv_tls::connector(connector, config.tls.as_ref());
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector.clone());
        let snapshot_client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector);
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {cluster_token}")).expect("a token is visible ASCII");
        authorization.set_sensitive(true);
        PeerNetwork {
            node_id,
            client,
            snapshot_client,
            scheme,
            authorization,
            config: Arc::new(config),
            troubles: Arc::default(),
            lease,
            snapshots_sending: Arc::default(),
        }
    }
}

impl PeerNetwork {
    /// A connection to the member `target` at `addr`, for calls outside openraft's own.
    fn to(&self, target: NodeId, addr: &str) -> PeerConnection {
        PeerConnection {
            network: self.clone(),
            target,
            base: format!("{}://{addr}", self.scheme),
            trouble: self.trouble_of(target),
        }
    }

    fn trouble_of(&self, target: NodeId) -> Arc<PeerTrouble> {
        let mut troubles = self.troubles.lock().unwrap_or_else(|e| e.into_inner());
        troubles.entry(target).or_default().clone()
    }

    /// Asks the member at `addr` to start an election now (leadership handover).
    pub(crate) async fn campaign(&self, target: NodeId, addr: &str) -> Result<(), PeerError> {
        let connection = self.to(target, addr);
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
        let connection = self.to(target, addr);
        let body = serde_json::to_vec(request)?;
        let answer = connection.post(PRE_VOTE_PATH, body, "application/json").await?;
        Ok(serde_json::from_slice(&answer)?)
    }

    /// Asks the member at `addr` who it is.
    pub(crate) async fn identity(&self, target: NodeId, addr: &str) -> Result<PeerIdentity, PeerError> {
        let connection = self.to(target, addr);
        let answer = connection
            .post(IDENTITY_PATH, Vec::new(), "application/json")
            .await?;
        Ok(serde_json::from_slice(&answer)?)
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        self.to(target, &node.addr)
    }
}

/// Calls to one peer.
pub struct PeerConnection {
    network: PeerNetwork,
    target: NodeId,
    base: String,
    trouble: Arc<PeerTrouble>,
}

impl PeerConnection {
    async fn post(&self, path: &str, body: Vec<u8>, content_type: &'static str) -> Result<Bytes, PeerError> {
        let request = Request::post(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, self.network.authorization.clone())
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a well-formed request");
        read_answer(self.network.client.request(request).await).await
    }

    /// One call with an encoded request (`body`, of `content_type`), answered with openraft's
    /// `Result<Resp, RaftError<E>>` as JSON.
    async fn call<Resp, E>(
        &self,
        path: &str,
        action: RPCTypes,
        (body, content_type): (Vec<u8>, &'static str),
        option: &RPCOption,
        entries: u64,
    ) -> Result<Resp, RpcError<E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = self.network.config.request_timeout.min(option.hard_ttl());
        let answer = match tokio::time::timeout(timeout, self.post(path, body, content_type)).await {
            Ok(answer) => answer,
            Err(_) => {
                let timeout = Timeout {
                    action,
                    id: self.network.node_id,
                    target: self.target,
                    timeout,
                };
                self.trouble.failed(self.target, action, &timeout);
                return Err(RPCError::Timeout(timeout));
            }
        };
        let decoded = answer.and_then(|bytes| {
            Ok(serde_json::from_slice::<Result<Resp, RaftError<NodeId, E>>>(
                &bytes,
            )?)
        });
        if decoded.is_ok() {
            self.trouble.answered(self.target);
        }
        match decoded {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            // The peer's body limit: openraft retries at once with fewer entries.
            Err(PeerError::Status {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                ..
            }) if entries > 1 => Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(
                entries / 2,
            ))),
            Err(e) => {
                self.trouble.failed(self.target, action, &e);
                Err(transport_error(e))
            }
        }
    }
}

fn transport_error<E: std::error::Error>(e: PeerError) -> RpcError<E> {
    match e {
        PeerError::Connect(_) => RPCError::Unreachable(Unreachable::new(&e)),
        other => RPCError::Network(NetworkError::new(&other)),
    }
}

/// Pause between attempts to reach a member that refused or dropped the connection (openraft's
/// default is 500 ms). A member that was down is usually back by a restart, and every pause
/// is time it waits for its first append or snapshot: a wiped member's catch-up began up to
/// half a second after it started listening. A refused connection costs a SYN and a RST.
const UNREACHABLE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

impl RaftNetwork<TypeConfig> for PeerConnection {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        let entries = rpc.entries.len() as u64;
        let (term, sent) = (rpc.vote.leader_id().term, std::time::Instant::now());
        // Binary: openraft 0.9 gives an append one heartbeat interval, and JSON would escape
        // every value's canonical text a second time and parse it back on the follower.
        let body = bincode::serialize(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let response = self
            .call(
                APPEND_PATH,
                RPCTypes::AppendEntries,
                (body, "application/octet-stream"),
                &option,
                entries,
            )
            .await?;
        // Any answer but a higher vote means the follower took this leader's vote, and with
        // it refuses other candidates for its lease from the moment it received the append.
        if rpc.vote.is_committed() && !matches!(response, AppendEntriesResponse::HigherVote(_)) {
            self.network.lease.acknowledged(self.target, term, sent);
        }
        Ok(response)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        let body = serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call(VOTE_PATH, RPCTypes::Vote, (body, "application/json"), &option, 0)
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
        let header = snapshot_transfer::encode_header(&header)
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        tokio::pin!(cancel);
        let _sending = SnapshotSending::count(&self.network.snapshots_sending);
        let answer = tokio::select! {
            closed = &mut cancel => return Err(StreamingError::Closed(closed)),
            answer = self.send_snapshot(header, *snapshot.snapshot) => answer,
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
                self.trouble.failed(self.target, RPCTypes::InstallSnapshot, &e);
                Err(match e {
                    PeerError::Connect(_) => StreamingError::Unreachable(Unreachable::new(&e)),
                    other => StreamingError::Network(NetworkError::new(&other)),
                })
            }
        }
    }
}

impl PeerConnection {
    /// Streams the snapshot file after `header` and returns the peer's answer. Frames are
    /// paced to `snapshot_bytes_per_second` while clients are active; a peer that takes no frame for the idle timeout,
    /// or does not answer within the install timeout once all was sent, fails the transfer.
    async fn send_snapshot(&self, header: Bytes, file: SnapshotData) -> Result<Bytes, PeerError> {
        let config = self.network.config.clone();
        let (frames, body) = tokio::sync::mpsc::channel(2);
        let request = Request::post(format!("{}{SNAPSHOT_PATH}", self.base))
            .header(header::AUTHORIZATION, self.network.authorization.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(ChannelBody(body))
            .expect("a well-formed request");
        let mut producer = tokio::spawn(produce_frames(header, file, frames, config.clone()));
        let response = self.network.snapshot_client.request(request);
        tokio::pin!(response);
        let response = tokio::select! {
            // The peer answered before everything was sent: it refused the transfer.
            response = &mut response => response,
            sent = &mut producer => {
                sent.map_err(|e| PeerError::SnapshotFile(std::io::Error::other(e)))??;
                match tokio::time::timeout(config.snapshot_install_timeout, &mut response).await {
                    Ok(response) => response,
                    Err(_) => return Err(PeerError::SnapshotStalled(config.snapshot_install_timeout)),
                }
            }
        };
        producer.abort();
        read_answer(response).await
    }
}

/// Counts one snapshot send for as long as it lives.
struct SnapshotSending(Arc<AtomicUsize>);

impl SnapshotSending {
    fn count(sending: &Arc<AtomicUsize>) -> SnapshotSending {
        sending.fetch_add(1, Ordering::Relaxed);
        SnapshotSending(sending.clone())
    }
}

impl Drop for SnapshotSending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A peer's whole answer body, or why there is none (a status other than 200 included).
async fn read_answer(
    response: Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
) -> Result<Bytes, PeerError> {
    let response = response.map_err(|e| {
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

/// Reads `file` from its start and sends it as frames after `header`, then the end.
async fn produce_frames(
    header: Bytes,
    mut file: SnapshotData,
    frames: tokio::sync::mpsc::Sender<Bytes>,
    config: Arc<PeerClientConfig>,
) -> Result<(), PeerError> {
    let idle = config.snapshot_idle_timeout;
    let send = |bytes: Bytes| {
        let frames = frames.clone();
        async move {
            match tokio::time::timeout(idle, frames.send(bytes)).await {
                Ok(Ok(())) => Ok(()),
                // The request ended (the peer answered or the connection broke): the
                // answer tells what happened.
                Ok(Err(_)) => Ok(()),
                Err(_) => Err(PeerError::SnapshotStalled(idle)),
            }
        }
    };
    file.rewind().await.map_err(PeerError::SnapshotFile)?;
    send(header).await?;
    // Paced from `paced_since` while clients are active; restarted whenever they are not.
    let mut paced_since = tokio::time::Instant::now();
    let mut paced_bytes = 0u64;
    let mut buf = vec![0u8; FRAME];
    let (mut total, mut crc) = (0u64, crc32fast::Hasher::new());
    loop {
        let n = read_full(&mut file, &mut buf)
            .await
            .map_err(PeerError::SnapshotFile)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        total += n as u64;
        send(snapshot_transfer::encode_frame(&buf[..n])).await?;
        if frames.is_closed() {
            return Ok(()); // the request ended early; its answer says why
        }
        // Pacing: while clients are served, never ahead of the configured rate, so a
        // transfer leaves room for them; with nobody waiting, full speed.
        if config.client_activity.is_active() {
            paced_bytes += n as u64;
            tokio::time::sleep_until(paced_since + pace(paced_bytes, config.snapshot_bytes_per_second)).await;
        } else {
            paced_since = tokio::time::Instant::now();
            paced_bytes = 0;
        }
    }
    send(snapshot_transfer::encode_end(total, crc.finalize())).await?;
    metrics::counter!("hakv_raft_snapshot_sent_bytes_total").increment(total);
    Ok(())
}

/// Fills `buf` unless the file ends first; returns how much was read.
async fn read_full(file: &mut SnapshotData, buf: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// How long sending `bytes` takes at `rate` bytes per second (0: unpaced).
fn pace(bytes: u64, rate: u64) -> std::time::Duration {
    if rate == 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_secs_f64(bytes as f64 / rate as f64)
}

/// A request body fed frame by frame through a channel.
pub(crate) struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot goes out in frames of at most `FRAME` bytes (the receiver would take up to
    /// `MAX_FRAME`): each frame's work must stay a fraction of a millisecond.
    #[tokio::test]
    async fn a_snapshot_is_sent_in_small_frames() {
        use crate::snapshot_transfer::{Decoder, Item};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let file: Vec<u8> = (0..2 * FRAME + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &file).unwrap();
        let data = SnapshotData::new(tokio::fs::File::open(&path).await.unwrap(), path);
        let (frames, mut wire) = tokio::sync::mpsc::channel(16);
        let header = snapshot_transfer::encode_header(&SnapshotHeader {
            vote: openraft::Vote::new_committed(1, 1),
            meta: openraft::SnapshotMeta::default(),
        })
        .unwrap();
        produce_frames(header, data, frames, Arc::new(PeerClientConfig::default()))
            .await
            .unwrap();
        let mut decoder = Decoder::new();
        while let Some(bytes) = wire.recv().await {
            decoder.push(&bytes);
        }
        let mut sizes = Vec::new();
        let mut received = Vec::new();
        loop {
            match decoder.next_item() {
                Ok(Some(Item::Chunk(chunk))) => {
                    sizes.push(chunk.len());
                    received.extend_from_slice(&chunk);
                }
                Ok(Some(Item::End)) | Ok(None) => break,
                Ok(Some(Item::Header(_))) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(sizes, [FRAME, FRAME, 17]);
        assert_eq!(received, file);
    }

    #[test]
    fn pacing_spreads_bytes_over_the_rate() {
        assert_eq!(pace(64 << 20, 64 << 20), std::time::Duration::from_secs(1));
        assert_eq!(pace(1 << 20, 0), std::time::Duration::ZERO);
    }
}
