//! Server side of the peer transport: an axum `Router` with `/raft/append`, `/raft/vote`,
//! `/raft/snapshot` and `/raft/campaign`, meant to be merged into a node's listener. Every
//! request must carry `Authorization: Bearer <cluster token>`; one without it gets 401 and is
//! counted.
//!
//! An append body is openraft's request in bincode (it carries the values, and must arrive
//! within one heartbeat); a vote body is JSON; both are answered with
//! `Result<Response, RaftError>` as JSON. A snapshot body is binary:
//! `header_len: u32 BE ‖ {"vote", "meta"} as JSON ‖ snapshot bytes`, answered with
//! `Result<SnapshotResponse, Fatal>` as JSON.

use crate::config::PeerServerLimits;
use crate::election_watch::LeaderContact;
use crate::pre_vote::{Judge, PreVoteRequest, PreVoteResponse};
use crate::{NodeId, Raft, TypeConfig};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{StatusCode, header};
use openraft::error::RaftError;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, Snapshot, SnapshotMeta, Vote};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const APPEND_PATH: &str = "/raft/append";
pub(crate) const VOTE_PATH: &str = "/raft/vote";
pub(crate) const SNAPSHOT_PATH: &str = "/raft/snapshot";
/// "Would you vote for me?" before a member raises the term (`crate::pre_vote`).
pub(crate) const PRE_VOTE_PATH: &str = "/raft/pre-vote";
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

/// The snapshot request's JSON header.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    pub vote: Vote<NodeId>,
    pub meta: SnapshotMeta<NodeId, BasicNode>,
}

pub(crate) fn encode_snapshot_body(
    header: &SnapshotHeader,
    data: &[u8],
) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(header)?;
    let mut body = Vec::with_capacity(4 + json.len() + data.len());
    body.extend_from_slice(&(json.len() as u32).to_be_bytes());
    body.extend_from_slice(&json);
    body.extend_from_slice(data);
    Ok(body)
}

fn decode_snapshot_body(body: &[u8]) -> Option<(SnapshotHeader, Vec<u8>)> {
    let len = u32::from_be_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let json = body.get(4..4 + len)?;
    let header = serde_json::from_slice(json).ok()?;
    Some((header, body[4 + len..].to_vec()))
}

#[derive(Clone)]
struct PeerState {
    raft: Raft,
    /// Touched whenever a leader's append or snapshot is accepted, or a vote is granted.
    contact: Arc<LeaderContact>,
    /// Answers pre-votes as this member would vote.
    judge: Arc<Judge>,
}

/// The peer endpoints of a node running `raft`.
pub(crate) fn router(
    raft: Raft,
    auth: Arc<PeerAuth>,
    limits: PeerServerLimits,
    contact: Arc<LeaderContact>,
    judge: Arc<Judge>,
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
        .route(
            SNAPSHOT_PATH,
            post(snapshot).layer(DefaultBodyLimit::max(limits.max_snapshot_bytes)),
        )
        .with_state(PeerState { raft, contact, judge })
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
    let response = state.raft.append_entries(request).await;
    if matches!(&response, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
        state.contact.touch();
    }
    json(&response)
}

async fn vote(State(state): State<PeerState>, body: Bytes) -> Response {
    let request: VoteRequest<NodeId> = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request("vote request", e),
    };
    if state.judge.is_rejoining() {
        // It lost the log it once acknowledged: its vote could elect a leader that lacks
        // committed entries. Refuse, as openraft refuses, with this member's current vote.
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

async fn campaign(State(state): State<PeerState>) -> Response {
    tracing::info!("asked to take over leadership: campaigning");
    match state.raft.trigger().elect().await {
        Ok(()) => json(&()),
        Err(fatal) => (StatusCode::SERVICE_UNAVAILABLE, fatal.to_string()).into_response(),
    }
}

async fn snapshot(State(state): State<PeerState>, body: Bytes) -> Response {
    state.contact.touch(); // as for appends: installing a large snapshot is not silence
    let Some((header, data)) = decode_snapshot_body(&body) else {
        return bad_request("snapshot", "bad header");
    };
    let snapshot = Snapshot {
        meta: header.meta,
        snapshot: Box::new(Cursor::new(data)),
    };
    let response = state.raft.install_full_snapshot(header.vote, snapshot).await;
    if response.is_ok() {
        state.contact.touch();
    }
    json(&response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_accepted() {
        let auth = PeerAuth::new("s3cret");
        assert!(auth.accepts(Some(b"Bearer s3cret")));
        for wrong in [&b"Bearer s3cres"[..], b"Bearer s3cret ", b"s3cret", b""] {
            assert!(!auth.accepts(Some(wrong)), "{wrong:?}");
        }
        assert!(!auth.accepts(None));
    }

    #[test]
    fn snapshot_bodies_round_trip_and_garbage_is_refused() {
        let header = SnapshotHeader {
            vote: Vote::new(3, 1),
            meta: SnapshotMeta::default(),
        };
        let body = encode_snapshot_body(&header, b"payload").unwrap();
        let (decoded, data) = decode_snapshot_body(&body).unwrap();
        assert_eq!((decoded.vote, data), (Vote::new(3, 1), b"payload".to_vec()));
        assert!(decode_snapshot_body(&body[..10]).is_none());
        assert!(decode_snapshot_body(&[0, 0, 0, 2, b'{', b'}']).is_none());
    }
}
