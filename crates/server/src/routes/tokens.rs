//! `/auth/tokens`: create, list and revoke client tokens (an admin grant needed). A token is
//! shown once, when it is created; the store keeps only a hash of its secret.

use crate::ApiError;
use crate::auth::{self, Need, NewToken, TOKENS_PREFIX, TokenRecord};
use crate::node::{Node, unavailable};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use hakv_store::{Condition, Op, Outcome};
use http::{HeaderMap, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// A token request is a name and a few grants: this is plenty.
const MAX_REQUEST_BYTES: usize = 64 << 10;
/// Most tokens listed (and kept: creating more is refused).
const MAX_TOKENS: usize = 10_000;

pub async fn create(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_auth_on(&node)?;
    auth::authorize(&node, &headers, Need::Admin)?;
    let bytes = crate::request_body::read_body(body, MAX_REQUEST_BYTES).await?;
    let request: NewToken =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    request.validate().map_err(|e| ApiError::InvalidToken(e.into()))?;
    if records(&node)?.len() >= MAX_TOKENS {
        return Err(ApiError::InvalidToken(format!(
            "there are {MAX_TOKENS} tokens already; revoke some first"
        )));
    }
    let (id, token, record) = request.issue(node.write_clock_ms());
    let op = Op::Put {
        key: format!("{TOKENS_PREFIX}{id}"),
        value: hakv_api::to_canonical_json(&record),
        ttl_ms: None,
        // Ids are random: an existing one means two creations raced on the same 64 bits.
        condition: Condition::Absent,
    };
    match node.write(op).await? {
        Outcome::Written { .. } => {
            let view = record.view(id);
            let body = json!({"id": view.id, "name": view.name, "grants": view.grants, "token": token});
            Ok((StatusCode::CREATED, axum::Json(body)).into_response())
        }
        other => Err(ApiError::Unavailable(format!("unexpected outcome {other:?}"))),
    }
}

pub async fn list(State(node): State<Arc<Node>>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_auth_on(&node)?;
    auth::authorize(&node, &headers, Need::Admin)?;
    node.read_barrier().await?;
    let tokens: Vec<_> = records(&node)?
        .into_iter()
        .map(|(id, record)| record.view(id))
        .collect();
    Ok(axum::Json(json!({ "tokens": tokens })).into_response())
}

pub async fn revoke(
    State(node): State<Arc<Node>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    require_auth_on(&node)?;
    auth::authorize(&node, &headers, Need::Admin)?;
    let op = Op::Delete {
        key: format!("{TOKENS_PREFIX}{id}"),
        condition: Condition::Always,
    };
    match node.write(op).await? {
        Outcome::Deleted { .. } => Ok(axum::Json(json!({ "revoked": id })).into_response()),
        Outcome::NotFound => Err(ApiError::TokenNotFound),
        other => Err(ApiError::Unavailable(format!("unexpected outcome {other:?}"))),
    }
}

/// Token management makes sense only while authentication is on.
fn require_auth_on(node: &Node) -> Result<(), ApiError> {
    match node.config.admin_token {
        Some(_) => Ok(()),
        None => Err(ApiError::InvalidToken(
            "authentication is off on this node (start it with --admin-token)".into(),
        )),
    }
}

/// Every token record this member has applied: `(id, record)`.
fn records(node: &Node) -> Result<Vec<(String, TokenRecord)>, ApiError> {
    let records = node
        .state_machine
        .scan(TOKENS_PREFIX, None, MAX_TOKENS, node.clock_ms())
        .map_err(unavailable)?;
    Ok(records
        .into_iter()
        .filter_map(|(key, record)| {
            let id = auth::id_of(&key)?.to_owned();
            serde_json::from_slice(record.value.as_bytes())
                .ok()
                .map(|r| (id, r))
        })
        .collect())
}
