//! `/data/{key}`: read, set (seed-compatible `POST`, and `PUT`), and delete one key.

use super::query::{Consistency, KeyParams};
use crate::ApiError;
use crate::auth::{self, Need};
use crate::key::key_from_path;
use crate::node::Node;
use crate::write_body::{condition_from_headers, read_write_body, require_json_content_type};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hakv_api::Revision;
use hakv_store::{Condition, Op, Outcome};
use http::{HeaderValue, Method, StatusCode, header};
use std::sync::Arc;

/// The seed's answer to a write, byte for byte (Flask `jsonify` in production mode).
static SET_BODY: Bytes = Bytes::from_static(b"{\"message\":\"Data set successfully\"}\n");
static DELETE_BODY: Bytes = Bytes::from_static(b"{\"message\":\"Data deleted successfully\"}\n");

/// One handler for every method on a key, so the key is decoded in one place.
pub async fn key_request(State(node): State<Arc<Node>>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let key = key_from_path(parts.uri.path())?;
    if auth::is_reserved(&key) {
        return Err(ApiError::ReservedKey);
    }
    let need = match parts.method {
        Method::GET | Method::HEAD => Need::Read(&key),
        _ => Need::Write(&key),
    };
    auth::authorize(&node, &parts.headers, need)?;
    let params = KeyParams::parse(parts.uri.query())?;
    match parts.method {
        Method::GET | Method::HEAD => {
            if params.consistency == Consistency::Linearizable {
                node.read_barrier().await?;
            }
            if let Some(revision) = min_revision(&parts.headers)? {
                // A revision this far ahead was never handed out (or this member is too far
                // behind to be worth waiting for): refused at once instead of holding a slot.
                let applied = node.state_machine.revision().0;
                if revision.0 > applied.saturating_add(MIN_REVISION_MARGIN) {
                    return Err(ApiError::InvalidPrecondition(
                        "X-Hakv-Min-Revision is more than 1000000 revisions beyond this member's",
                    ));
                }
                // A single node applies a write before it answers it: a revision beyond its
                // own was never handed out, so waiting for it could only time out.
                if node.cluster().is_none() && revision.0 > applied {
                    return Err(ApiError::InvalidPrecondition(
                        "X-Hakv-Min-Revision is beyond this node's revision: no write has reached it yet",
                    ));
                }
                // Read-your-writes on any replica; the request timeout bounds the wait.
                node.state_machine.wait_for_revision(revision).await;
            }
            get(&node, &key, parts.headers.get(http::header::IF_NONE_MATCH))
        }
        Method::POST => set(&node, &key, &parts.headers, body, SetStyle::Post).await,
        Method::PUT => set(&node, &key, &parts.headers, body, SetStyle::Put).await,
        Method::DELETE => delete(&node, &key, &parts.headers).await,
        _ => Err(method_error(&parts.method)),
    }
}

/// How far beyond this node's applied revision `X-Hakv-Min-Revision` may be: a follower may lag
/// the leader by some revisions, never by this many while it serves reads.
const MIN_REVISION_MARGIN: u64 = 1_000_000;

/// `X-Hakv-Min-Revision: N`: answer only once revision N is applied on this node.
fn min_revision(headers: &http::HeaderMap) -> Result<Option<Revision>, ApiError> {
    headers
        .get("x-hakv-min-revision")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(Revision::parse_etag)
                .ok_or(ApiError::InvalidPrecondition(
                    "X-Hakv-Min-Revision must be a revision number",
                ))
        })
        .transpose()
}

/// `/data/` names no key.
pub async fn empty_key() -> ApiError {
    ApiError::InvalidKey("the key is empty")
}

pub async fn method_not_allowed(method: Method) -> ApiError {
    method_error(&method)
}

fn method_error(method: &Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        allowed: "GET, HEAD, POST, PUT, DELETE",
    }
}

/// A read; with `If-None-Match` naming the current revision (weakly compared, RFC 9110
/// 13.1.2) or `*`, 304 with the `ETag` and no body: the client's copy is current.
fn get(node: &Node, key: &str, if_none_match: Option<&HeaderValue>) -> Result<Response, ApiError> {
    let value = node.read(key)?.ok_or(ApiError::KeyNotFound)?;
    let current = Revision::parse_etag(value.etag.to_str().unwrap_or_default());
    let unchanged = if_none_match.and_then(|h| h.to_str().ok()).is_some_and(|tags| {
        tags.split(',')
            .any(|tag| tag.trim() == "*" || Revision::parse_etag(tag).is_some_and(|t| Some(t) == current))
    });
    if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, value.etag.clone());
        return Ok(response);
    }
    Ok(json_response(
        StatusCode::OK,
        value.body.clone(),
        Some(value.etag.clone()),
    ))
}

#[derive(Clone, Copy, PartialEq)]
enum SetStyle {
    /// The seed's `POST`: always 201.
    Post,
    /// `PUT`: 201 when created, 200 when replaced.
    Put,
}

async fn set(
    node: &Node,
    key: &str,
    headers: &http::HeaderMap,
    body: Body,
    style: SetStyle,
) -> Result<Response, ApiError> {
    require_json_content_type(headers)?;
    let condition = condition_from_headers(headers)?;
    let write = read_write_body(body, node.config.max_body_bytes(), node.config.max_value_bytes).await?;
    let op = Op::Put {
        key: key.to_owned(),
        value: write.value,
        ttl_ms: write.ttl_ms,
        condition,
    };
    match node.write(op).await? {
        Outcome::Written { revision, created } => {
            let status = if style == SetStyle::Put && !created {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(status, SET_BODY.clone(), Some(etag(revision))))
        }
        Outcome::ConditionFailed { current } => Err(ApiError::PreconditionFailed { current }),
        other => unreachable_outcome(other),
    }
}

async fn delete(node: &Node, key: &str, headers: &http::HeaderMap) -> Result<Response, ApiError> {
    let condition = condition_from_headers(headers)?;
    if condition == Condition::Absent {
        return Err(ApiError::InvalidPrecondition(
            "If-None-Match: * makes no sense on DELETE",
        ));
    }
    match node
        .write(Op::Delete {
            key: key.to_owned(),
            condition,
        })
        .await?
    {
        Outcome::Deleted { revision } => Ok(json_response(
            StatusCode::OK,
            DELETE_BODY.clone(),
            Some(etag(revision)),
        )),
        Outcome::NotFound => Err(ApiError::KeyNotFound),
        Outcome::ConditionFailed { current } => Err(ApiError::PreconditionFailed { current }),
        other => unreachable_outcome(other),
    }
}

/// An outcome the state machine never gives for this operation; reported, never a panic.
fn unreachable_outcome(outcome: Outcome) -> Result<Response, ApiError> {
    tracing::error!(?outcome, "unexpected outcome from the state machine");
    Err(ApiError::Unavailable(format!("unexpected outcome {outcome:?}")))
}

fn etag(revision: Revision) -> HeaderValue {
    HeaderValue::from_str(&revision.etag()).expect("digits and quotes")
}

pub fn json_response(status: StatusCode, body: Bytes, etag: Option<HeaderValue>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag);
    }
    response
}
