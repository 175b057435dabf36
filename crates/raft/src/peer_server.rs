//! Server side of the peer transport: an axum `Router` with `/raft/append`, `/raft/vote`,
//! `/raft/snapshot` and `/raft/campaign`, meant to be merged into a node's listener. Every
//! request must carry `Authorization: Bearer <cluster token>`; one without it gets 401 and is
//! counted.
//!
//! An append body is openraft's request in bincode (it carries the values, and must arrive
//! within one heartbeat); a vote body is JSON; both are answered with
//! `Result<Response, RaftError>` as JSON. A snapshot arrives streamed in checksummed frames
//! (`crate::snapshot_transfer`), is written to a file as it comes, one transfer at a time,
//! and is answered with `Result<SnapshotResponse, Fatal>` as JSON once installed.

use crate::config::PeerServerLimits;
use crate::election_watch::LeaderContact;
use crate::identity::{Identity, NodeIdentity};
use crate::pre_vote::{Judge, PreVoteRequest, PreVoteResponse};
use crate::snapshot_check::{StreamCheck, Writeback};
use crate::snapshot_data::SnapshotData;
use crate::snapshot_transfer::{Decoder, Item, SnapshotHeader, TransferError};
use crate::{NodeId, Raft, TypeConfig};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hakv_store::DiskSpace;
use http::{StatusCode, header};
use openraft::Snapshot;
use openraft::error::RaftError;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const APPEND_PATH: &str = "/raft/append";
pub(crate) const VOTE_PATH: &str = "/raft/vote";
pub(crate) const SNAPSHOT_PATH: &str = "/raft/snapshot";
/// "Would you vote for me?" before a member raises the term (`crate::pre_vote`).
pub(crate) const PRE_VOTE_PATH: &str = "/raft/pre-vote";
/// Who a member is (`PeerIdentity`).
pub(crate) const IDENTITY_PATH: &str = "/raft/identity";
/// The leader asks the member it hands leadership to to campaign at once.
pub(crate) const CAMPAIGN_PATH: &str = "/raft/campaign";

/// Checks the cluster token and counts the requests it turns away.
pub struct PeerAuth {
    expected: Vec<u8>,
    rejected: AtomicU64,
}

impl PeerAuth {
    pub fn new(cluster_token: &str) -> PeerAuth {
        PeerAuth {
            expected: format!("Bearer {cluster_token}").into_bytes(),
            rejected: AtomicU64::new(0),
        }
    }

    /// Peer requests refused for a missing or wrong token since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn accepts(&self, presented: Option<&[u8]>) -> bool {
        presented.is_some_and(|p| hakv_api::same_secret(p, &self.expected))
    }
}

#[derive(Clone)]
struct PeerState {
    raft: Raft,
    /// Touched whenever a leader's append or snapshot is accepted, or a vote is granted.
    contact: Arc<LeaderContact>,
    /// Answers pre-votes as this member would vote.
    judge: Arc<Judge>,
    identity: Arc<NodeIdentity>,
    /// While the disk is nearly full, entries and snapshots are refused (507); heartbeats
    /// still pass, so the leader is not taken for gone.
    disk: Arc<DiskSpace>,
    /// One snapshot transfer is received at a time (each takes a file and the disk).
    snapshot_slot: Arc<tokio::sync::Semaphore>,
    limits: PeerServerLimits,
}

/// The peer endpoints of a node running `raft`.
pub(crate) fn router(
    raft: Raft,
    auth: Arc<PeerAuth>,
    limits: PeerServerLimits,
    contact: Arc<LeaderContact>,
    judge: Arc<Judge>,
    identity: Arc<NodeIdentity>,
    disk: Arc<DiskSpace>,
) -> Router {
    Router::new()
        .route(
            APPEND_PATH,
            post(append).layer(DefaultBodyLimit::max(limits.max_append_bytes)),
        )
        .route(
            VOTE_PATH,
            post(vote).layer(DefaultBodyLimit::max(limits.max_append_bytes)),
        )
        .route(
            PRE_VOTE_PATH,
            post(pre_vote).layer(DefaultBodyLimit::max(64 << 10)),
        )
        .route(CAMPAIGN_PATH, post(campaign))
        .route(IDENTITY_PATH, post(identity_of_member))
        .route(
            SNAPSHOT_PATH,
            // Streamed to a file in bounded frames: no size limit but the disk.
            post(snapshot).layer(DefaultBodyLimit::disable()),
        )
        .with_state(PeerState {
            raft,
            contact,
            judge,
            identity,
            disk,
            snapshot_slot: Arc::new(tokio::sync::Semaphore::new(1)),
            limits,
        })
        .layer(middleware::from_fn_with_state(auth, require_token))
}

async fn require_token(State(auth): State<Arc<PeerAuth>>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !auth.accepts(presented) {
        auth.rejected.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("hakv_raft_peer_rejected_total").increment(1);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "peer requests need the cluster token",
        )
            .into_response();
    }
    next.run(request).await
}

/// The answer to entries or a snapshot while the disk is nearly full: the leader retries later,
/// and the member catches up once space is freed.
fn disk_full() -> Response {
    metrics::counter!("hakv_raft_appends_refused_disk_full_total").increment(1);
    (
        StatusCode::INSUFFICIENT_STORAGE,
        "this member's disk is nearly full; it takes no entries until space is freed",
    )
        .into_response()
}

fn bad_request(what: &str, err: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, format!("undecodable {what}: {err}")).into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append(State(state): State<PeerState>, body: Bytes) -> Response {
    // A leader is talking to us right now; decoding and appending a large batch can take
    // longer than a lease, and must not look like silence to the election watch. (A deposed
    // leader's request delays a campaign by one lease at most: it is refused below and
    // touches nothing more.)
    state.contact.touch();
    let request: AppendEntriesRequest<TypeConfig> = match bincode::deserialize(&body) {
        Ok(request) => request,
        Err(e) => return bad_request("append request", e),
    };
    if !request.entries.is_empty() && state.disk.is_low() {
        return disk_full();
    }
    let leader_term = request.vote.leader_id.get_term();
    let leader_commit = request
        .leader_commit
        .map(|id| (id.leader_id.get_term(), id.index));
    let sent_up_to = request
        .entries
        .last()
        .map(|entry| entry.log_id.index)
        .or(request.prev_log_id.map(|id| id.index));
    let response = state.raft.append_entries(request).await;
    if matches!(&response, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
        state.contact.touch();
    }
    if state.judge.is_catching_up() {
        let matched = match &response {
            Ok(AppendEntriesResponse::Success) => sent_up_to,
            Ok(AppendEntriesResponse::PartialSuccess(matching)) => matching.map(|id| id.index),
            _ => None,
        };
        if Identity::caught_up_by(leader_term, leader_commit, matched) {
            state.identity.mark_caught_up();
        }
    }
    json(&response)
}

async fn vote(State(state): State<PeerState>, body: Bytes) -> Response {
    let request: VoteRequest<NodeId> = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request("vote request", e),
    };
    if !state.judge.may_vote_for(request.last_log_id.as_ref()) {
        // It may have lost entries it once acknowledged: its vote could elect a leader that
        // lacks committed entries. Refuse, as openraft refuses, with its current vote.
        let metrics = state.raft.metrics().borrow().clone();
        let refusal = VoteResponse::new(metrics.vote, None, false);
        return json(&Ok::<_, RaftError<NodeId>>(refusal));
    }
    let response = state.raft.vote(request).await;
    if matches!(&response, Ok(r) if r.vote_granted) {
        state.contact.touch();
    }
    json(&response)
}

async fn pre_vote(State(state): State<PeerState>, body: Bytes) -> Response {
    let request: PreVoteRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request("pre-vote request", e),
    };
    let verdict = state.judge.judge(&request).await;
    json(&PreVoteResponse {
        granted: verdict.is_ok(),
        reason: verdict.err().map(|refusal| refusal.to_string()),
    })
}

/// What `POST /raft/identity` answers: who this member is and whether it holds a log, for a
/// member that starts and must know whether a cluster already exists (`crate::bootstrap`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(crate) struct PeerIdentity {
    pub node_id: NodeId,
    pub cluster_id: Option<String>,
    /// Nothing in its log: a new member, or one that lost its data.
    pub empty: bool,
}

async fn identity_of_member(State(state): State<PeerState>) -> Response {
    let identity = state.identity.file.get();
    let metrics = state.raft.metrics().borrow().clone();
    json(&PeerIdentity {
        node_id: identity.node_id,
        cluster_id: identity.cluster_id,
        empty: metrics.last_log_index.is_none() && metrics.snapshot.is_none(),
    })
}

async fn campaign(State(state): State<PeerState>) -> Response {
    tracing::info!("asked to take over leadership: campaigning");
    match state.raft.trigger().elect().await {
        Ok(()) => json(&()),
        Err(fatal) => (StatusCode::SERVICE_UNAVAILABLE, fatal.to_string()).into_response(),
    }
}

async fn snapshot(State(state): State<PeerState>, body: axum::body::Body) -> Response {
    let Ok(_slot) = state.snapshot_slot.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "another snapshot is being received",
        )
            .into_response();
    };
    state.contact.touch(); // as for appends: a large snapshot is not silence
    if state.disk.is_low() {
        return disk_full();
    }
    let started = std::time::Instant::now();
    let (header, data) = match receive_snapshot(&state, body).await {
        Ok(received) => {
            tracing::info!(
                snapshot = %received.0.meta.snapshot_id,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "snapshot received"
            );
            received
        }
        Err(e) => {
            tracing::warn!(error = %e, "a snapshot transfer was refused");
            metrics::counter!("hakv_raft_snapshot_refused_total").increment(1);
            return bad_request("snapshot", e);
        }
    };
    let received = data.path().map(Path::to_path_buf);
    let snapshot = Snapshot {
        meta: header.meta,
        snapshot: Box::new(data),
    };
    let response = state.raft.install_full_snapshot(header.vote, snapshot).await;
    // Installed snapshots were renamed away; one that was not (an outdated vote) is dropped.
    if let Some(received) = received.filter(|path| path.exists()) {
        hakv_store::removal::remove_gradually_in_background(received);
    }
    if response.is_ok() {
        state.contact.touch();
    }
    json(&response)
}

#[derive(Debug, thiserror::Error)]
enum ReceiveError {
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error("the sender went silent for {0:?}")]
    Stalled(std::time::Duration),
    #[error("the transfer broke: {0}")]
    Body(#[from] axum::Error),
    #[error("the body ended before the snapshot did")]
    Truncated,
    #[error("writing the snapshot file: {0}")]
    File(#[from] std::io::Error),
    #[error("raft refused to receive a snapshot: {0}")]
    Raft(String),
    #[error("the received file is not a whole snapshot: {0}")]
    NotASnapshot(String),
}

/// Reads a snapshot transfer into a new file, checking every frame; returns the header and
/// the complete, fsynced file. A failed transfer leaves no file behind (removed gradually, in
/// the background).
async fn receive_snapshot(
    state: &PeerState,
    body: axum::body::Body,
) -> Result<(SnapshotHeader, SnapshotData), ReceiveError> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let idle = state.limits.snapshot_idle_timeout;
    let mut body = body;
    let mut decoder = Decoder::new();
    let mut header = None;
    let mut file: Option<Box<SnapshotData>> = None;
    let mut check: Option<(StreamCheck, Writeback)> = None;
    // When the first and the latest chunk came, and the bytes between: the arrival rate.
    let mut arrival: Option<(std::time::Instant, std::time::Instant, u64)> = None;
    let result = async {
        loop {
            while let Some(item) = decoder.next_item()? {
                match item {
                    Item::Header(h) => {
                        header = Some(*h);
                        let data = state
                            .raft
                            .begin_receiving_snapshot()
                            .await
                            .map_err(|e| ReceiveError::Raft(e.to_string()))?;
                        check = Some((StreamCheck::start(), Writeback::new(data.std_handle().await?)));
                        file = Some(data);
                    }
                    Item::Chunk(bytes) => {
                        let out = file.as_mut().expect("the header comes first");
                        out.write_all(&bytes).await?;
                        let (verifier, writeback) = check.as_mut().expect("the header comes first");
                        writeback.wrote(bytes.len() as u64);
                        let now = std::time::Instant::now();
                        let (_, last, total) = arrival.get_or_insert((now, now, 0));
                        (*last, *total) = (now, *total + bytes.len() as u64);
                        verifier.feed(bytes.clone()).await;
                        metrics::counter!("hakv_raft_snapshot_received_bytes_total")
                            .increment(bytes.len() as u64);
                        state.contact.touch();
                    }
                    Item::End => {}
                }
            }
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(ReceiveError::Stalled(idle)),
                Ok(None) => break,
                Ok(Some(frame)) => frame?,
            };
            if let Ok(data) = frame.into_data() {
                decoder.push(&data);
            }
        }
        if !decoder.is_done() {
            return Err(ReceiveError::Truncated);
        }
        let out = file.as_mut().expect("done implies a header");
        out.flush().await?;
        let (verifier, _) = check.take().expect("done implies a header");
        verifier.verdict().await.map_err(ReceiveError::NotASnapshot)?;
        out.mark_verified();
        let arrived = arrival.and_then(|(first, last, bytes)| bytes_per_second(bytes, last - first));
        if let Some(rate) = install_pace(arrived, state.limits.snapshot_pace) {
            out.set_install_pace(rate);
        }
        Ok(())
    }
    .await;
    match (result, header, file) {
        (Ok(()), Some(header), Some(data)) => Ok((header, *data)),
        (result, _, file) => {
            if let Some(path) = file.as_ref().and_then(|data| data.path()) {
                hakv_store::removal::remove_gradually_in_background(path.to_path_buf());
            }
            Err(result.err().unwrap_or(ReceiveError::Truncated))
        }
    }
}

/// `bytes` over `elapsed`; `None` when too quick to tell (a small snapshot in one go).
fn bytes_per_second(bytes: u64, elapsed: std::time::Duration) -> Option<u64> {
    (elapsed >= std::time::Duration::from_millis(100)).then(|| (bytes as f64 / elapsed.as_secs_f64()) as u64)
}

/// The pace to install a received snapshot at: the rate it `arrived` at when the sender paced
/// it (no faster than `paced` bytes per second, with a quarter's margin for the sender's
/// bursts), so that its writes leave the disk to clients as the transfer did; none when it
/// came faster, because the sender then had no client waiting. Installed at its arrival rate
/// whatever the sender did, a quiet catch-up took twice its transfer: the install reads the
/// received file only once the transfer is over (a 5 GB state: 16 s to arrive, then 16 s to
/// install; docs/benchmarks.md, "Compressed ingestion").
fn install_pace(arrived: Option<u64>, paced: u64) -> Option<u64> {
    arrived.filter(|rate| paced > 0 && *rate <= paced + paced / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_snapshot_that_arrived_paced_is_installed_paced() {
        let paced = 64 << 20;
        assert_eq!(install_pace(Some(60 << 20), paced), Some(60 << 20));
        assert_eq!(
            install_pace(Some(80 << 20), paced),
            Some(80 << 20),
            "within the margin"
        );
        assert_eq!(install_pace(Some(300 << 20), paced), None, "sent unpaced");
        assert_eq!(install_pace(None, paced), None, "too quick to tell");
        assert_eq!(install_pace(Some(1 << 20), 0), None, "pacing turned off");
    }

    #[test]
    fn an_arrival_rate_needs_a_tenth_of_a_second_to_tell() {
        let ms = std::time::Duration::from_millis;
        assert_eq!(bytes_per_second(64 << 20, ms(1000)), Some(64 << 20));
        assert_eq!(bytes_per_second(1 << 20, ms(250)), Some(4 << 20));
        assert_eq!(bytes_per_second(1 << 30, ms(99)), None);
    }

    #[test]
    fn only_the_exact_token_is_accepted() {
        let auth = PeerAuth::new("s3cret");
        assert!(auth.accepts(Some(b"Bearer s3cret")));
        for wrong in [&b"Bearer s3cres"[..], b"Bearer s3cret ", b"s3cret", b""] {
            assert!(!auth.accepts(Some(wrong)), "{wrong:?}");
        }
        assert!(!auth.accepts(None));
    }
}
