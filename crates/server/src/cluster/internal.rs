//! The internal routes one member calls on another: a batch of forwarded writes and a read
//! index. Answers carry each outcome or API error in the body, so the follower relays the
//! leader's answer exactly. The client requests' ids come along in headers, and the leader
//! names them in its log line about any write or read it failed with a 5xx.
//!
//! Every request passes `guard` first, before any body byte is read: the cluster token
//! (401), a bound on requests in flight (503), and a deadline for the whole request, body
//! included (408), so that nobody can hold memory or slots with slow or unauthenticated
//! bodies.

use super::ClusterNode;
use super::forward_queue::{MAX_BATCH_BYTES, MAX_BATCH_COMMANDS};
use crate::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::future::join_all;
use hakv_api::ErrorCode;
use hakv_store::{Command, Outcome};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const PROPOSE_PATH: &str = "/internal/propose";
pub const READ_INDEX_PATH: &str = "/internal/read-index";

/// The ids of a forwarded batch's client requests, in the batch's order, separated by spaces
/// (an id has none); `-` where a request had none. Forwarded writes carry theirs, and so does
/// a read index (the ids of the reads it serves).
pub const FORWARDED_REQUEST_IDS: HeaderName = HeaderName::from_static("x-forwarded-request-ids");

/// Most bytes of [`FORWARDED_REQUEST_IDS`]: far below a request head's limit. The writes of a
/// batch past it go without their ids.
const MAX_FORWARDED_IDS_BYTES: usize = 16 << 10;

/// The [`FORWARDED_REQUEST_IDS`] value for a batch, or `None` when no write has an id.
pub fn forwarded_request_ids(ids: &[Option<&HeaderValue>]) -> Option<HeaderValue> {
    if ids.iter().all(Option::is_none) {
        return None;
    }
    let mut joined = Vec::new();
    for id in ids {
        let id = id.map_or(&b"-"[..], |id| id.as_bytes());
        if joined.len() + 1 + id.len() > MAX_FORWARDED_IDS_BYTES {
            break;
        }
        if !joined.is_empty() {
            joined.push(b' ');
        }
        joined.extend_from_slice(id);
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// The ids of a forwarded batch, as sent in [`FORWARDED_REQUEST_IDS`] (none when absent).
fn request_ids_of_batch(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get(FORWARDED_REQUEST_IDS)
        .and_then(|ids| ids.to_str().ok())
        .map(|ids| ids.split(' ').collect())
        .unwrap_or_default()
}

/// Logs a forwarded request that failed on this leader as a member's own "request failed"
/// line would be logged (`worth_a_log_line`), naming the client request's id.
fn log_if_failed<T>(result: &Result<T, ApiError>, request_id: Option<&str>, what: &'static str) {
    if let Err(err) = result
        && crate::error::worth_a_log_line(err.status())
    {
        tracing::warn!(
            request_id = request_id.unwrap_or("-"),
            status = err.status().as_u16(),
            reason = %err,
            "forwarded {what} failed"
        );
    }
}

/// The answer of an internal route: the value, or the leader's error as the client should
/// see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply<T> {
    Ok(T),
    Err {
        status: u16,
        code: ErrorCode,
        message: String,
    },
}

impl<T> Reply<T> {
    pub fn into_result(self) -> Result<T, ApiError> {
        match self {
            Reply::Ok(value) => Ok(value),
            Reply::Err {
                status,
                code,
                message,
            } => Err(ApiError::Relayed {
                status,
                code,
                message,
            }),
        }
    }

    fn from_result(result: Result<T, ApiError>) -> Reply<T> {
        match result {
            Ok(value) => Reply::Ok(value),
            Err(err) => Reply::Err {
                status: err.status().as_u16(),
                code: err.code(),
                message: err.to_string(),
            },
        }
    }
}

pub struct Internal {
    pub cluster: Arc<ClusterNode>,
    authorization: Vec<u8>,
    /// Internal requests being served; beyond [`MAX_IN_FLIGHT`], refused.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// The whole request, body included, must be served within this.
    deadline: std::time::Duration,
}

/// Internal requests served at once. A follower forwards at most a few batches at a time
/// (`forward_queue`), so this is far above what members need.
pub const MAX_IN_FLIGHT: usize = 256;

/// Largest forwarded batch body (bincode): a full batch (`forward_queue::MAX_BATCH_BYTES` of
/// keys and values) plus one largest write, plus each command's few fixed fields.
pub fn max_propose_body(max_write_body: usize) -> usize {
    MAX_BATCH_BYTES + max_write_body + MAX_BATCH_COMMANDS * 256
}

/// `/internal/*`, merged into the node's router; `max_write_body` is the client API's largest
/// write body; `request_timeout` the client API's (a request here gets a second more).
pub fn router(
    cluster: Arc<ClusterNode>,
    token: &str,
    max_write_body: usize,
    request_timeout: std::time::Duration,
) -> Router {
    let internal = Arc::new(Internal {
        cluster,
        authorization: format!("Bearer {token}").into_bytes(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        deadline: request_timeout + std::time::Duration::from_secs(1),
    });
    Router::new()
        .route(
            PROPOSE_PATH,
            post(propose).layer(DefaultBodyLimit::max(max_propose_body(max_write_body))),
        )
        .route(READ_INDEX_PATH, post(read_index))
        .layer(middleware::from_fn_with_state(internal.clone(), guard))
        .with_state(internal)
}

/// Token, in-flight bound and deadline, checked before the handler reads any of the body.
async fn guard(State(internal): State<Arc<Internal>>, request: Request, next: Next) -> Response {
    if !authorized(&internal, request.headers()) {
        return refuse();
    }
    let Ok(_permit) = internal.in_flight.clone().try_acquire_owned() else {
        metrics::counter!("hakv_cluster_internal_requests_shed_total").increment(1);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many internal requests in flight\n",
        )
            .into_response();
    };
    match tokio::time::timeout(internal.deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "the internal request was not received and served in time\n",
        )
            .into_response(),
    }
}

fn authorized(internal: &Internal, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    hakv_api::same_secret(presented, &internal.authorization)
}

fn refuse() -> Response {
    metrics::counter!("hakv_cluster_rejected_internal_requests_total").increment(1);
    (StatusCode::UNAUTHORIZED, "cluster token missing or wrong\n").into_response()
}

async fn propose(State(internal): State<Arc<Internal>>, headers: HeaderMap, body: Bytes) -> Response {
    internal.cluster.raft().client_activity().touch(); // clients' writes, forwarded
    let commands = match bincode::deserialize::<Vec<Command>>(&body) {
        Ok(commands) => commands,
        Err(err) => {
            let refused =
                Reply::<()>::from_result(Err(ApiError::InvalidJson(format!("forwarded commands: {err}"))));
            return (StatusCode::BAD_REQUEST, axum::Json(refused)).into_response();
        }
    };
    // Proposed together, the commands join the same log entry.
    let outcomes = join_all(commands.into_iter().map(|c| internal.cluster.propose_here(c))).await;
    let request_ids = request_ids_of_batch(&headers);
    for (i, outcome) in outcomes.iter().enumerate() {
        log_if_failed(outcome, request_ids.get(i).copied(), "write");
    }
    let replies: Vec<Reply<Outcome>> = outcomes.into_iter().map(Reply::from_result).collect();
    axum::Json(replies).into_response()
}

async fn read_index(State(internal): State<Arc<Internal>>, headers: HeaderMap) -> Response {
    internal.cluster.raft().client_activity().touch(); // clients' reads, via a follower
    let index = internal.cluster.read_index_here().await;
    // One read index serves a round of the follower's readers; a failure is theirs, each.
    let request_ids = request_ids_of_batch(&headers);
    if request_ids.is_empty() {
        log_if_failed(&index, None, "read");
    }
    for request_id in request_ids {
        log_if_failed(&index, Some(request_id), "read");
    }
    axum::Json(Reply::from_result(index)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hakv_api::CanonicalJson;
    use hakv_store::{Condition, Op};

    #[test]
    fn a_batchs_request_ids_travel_in_order_and_within_their_bound() {
        let (a, b) = (
            HeaderValue::from_static("req-a"),
            HeaderValue::from_static("req-b"),
        );
        let value = forwarded_request_ids(&[Some(&a), None, Some(&b)]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED_REQUEST_IDS, value);
        assert_eq!(request_ids_of_batch(&headers), ["req-a", "-", "req-b"]);
        assert_eq!(
            forwarded_request_ids(&[None, None]),
            None,
            "no header without ids"
        );

        let long = HeaderValue::from_str(&"x".repeat(128)).unwrap();
        let many = vec![Some(&long); 1024];
        let value = forwarded_request_ids(&many).unwrap();
        assert!(value.len() <= MAX_FORWARDED_IDS_BYTES, "{}", value.len());
        headers.insert(FORWARDED_REQUEST_IDS, value);
        let sent = request_ids_of_batch(&headers);
        assert!(
            sent.len() > 100 && sent.iter().all(|id| *id == long),
            "the first ids, whole"
        );
    }

    /// The largest batch the forward queue can form (full, plus one largest write, each with
    /// the longest key and an escape-heavy value) fits the internal route's body limit;
    /// axum's default (2 MiB) would refuse it.
    #[test]
    fn the_largest_forwarded_batch_fits_the_body_limit() {
        let max_value = 1usize << 20;
        let max_write_body = max_value + 64 * 1024;
        let quotes = format!("\"{}\"", "\\\"".repeat((max_value - 2) / 2));
        let command = |i: usize| Command {
            at_ms: u64::MAX,
            op: Op::Put {
                key: format!("{i:01024}"),
                value: CanonicalJson::from_canonical_bytes(quotes.clone().into_bytes()),
                ttl_ms: Some(u64::MAX),
                condition: Condition::Always,
            },
        };
        // A batch grows until MAX_BATCH_BYTES and may then take one more write.
        let per_command = 1024 + max_value;
        let commands: Vec<Command> = (0..MAX_BATCH_BYTES / per_command + 2).map(command).collect();
        let body = bincode::serialize(&commands).unwrap();
        assert!(body.len() > 2 << 20, "the batch must exceed axum's default limit");
        assert!(body.len() <= max_propose_body(max_write_body), "{}", body.len());
    }
}
