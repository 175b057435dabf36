//! `GET /cluster`: who leads, the term, the members and how far each follower lags.

use super::data::json_response;
use crate::ApiError;
use crate::cluster::ClusterNode;
use crate::node::Node;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use hakv_raft::CATCH_UP_TIMEOUT;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::sync::Arc;

pub async fn status(State(node): State<Arc<Node>>) -> Response {
    let body = match node.cluster() {
        Some(member) => serde_json::to_vec(&member.raft().status()),
        // A single node leads itself; there is nothing to elect.
        None => serde_json::to_vec(&serde_json::json!({"mode": "single", "leader": null, "members": []})),
    };
    let mut body = body.expect("status serializes");
    body.push(b'\n');
    json_response(StatusCode::OK, body.into(), None)
}

/// Largest body of `POST /cluster/members` (an id and an address).
const MAX_MEMBER_BODY_BYTES: usize = 4096;

/// Body of `POST /cluster/members`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    #[serde(deserialize_with = "member_id")]
    id: u64,
    /// An IP and port, or a host name and port (resolved at each connection).
    addr: String,
    /// Kept a learner: a read replica that serves reads and never votes.
    #[serde(default)]
    learner: bool,
}

/// A member id: a whole number, written as an integer or as a float (`4.0`).
fn member_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    hakv_api::whole_number(&value)
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a member id (a whole number)")))
}

/// `POST /cluster/members {"id", "addr", "learner"}`: checks that the new member runs, adds it
/// as a learner, waits until it has caught up (at most `CATCH_UP_TIMEOUT`, else 504
/// `catch_up_timeout` and it stays a learner), then promotes it to voter, unless `learner` is
/// true (a read replica). On the leader only; a voter already is 409 `already_member`, and so
/// is any member when adding a read replica.
pub async fn add_member(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let member = node.cluster().ok_or(ApiError::NotClustered)?;
    require_token(&node, &headers)?;
    // Read only once the caller is known to hold the token, and only a small body.
    let body = crate::request_body::read_body(body, MAX_MEMBER_BODY_BYTES).await?;
    let new: NewMember = serde_json::from_slice(&body).map_err(|e| {
        ApiError::InvalidJson(format!(
            "expected {{\"id\": N, \"addr\": \"host:port\", \"learner\": false}}: {e}"
        ))
    })?;
    if new.id == 0 {
        return Err(ApiError::InvalidJson("member ids start at 1".into()));
    }
    let addr = hakv_api::peer_addr(&new.addr).map_err(ApiError::InvalidJson)?;
    if new.learner {
        member
            .raft()
            .add_read_replica(new.id, addr, CATCH_UP_TIMEOUT)
            .await?;
    } else {
        member.raft().add_voter(new.id, addr, CATCH_UP_TIMEOUT).await?;
    }
    Ok(status(State(node)).await)
}

/// `POST /cluster/members/{id}/promote`: makes a learner a voter once it has caught up (at
/// most `CATCH_UP_TIMEOUT`, else 504 `catch_up_timeout` and it stays a learner). On the
/// leader only; an unknown id is 404 `not_member`, a voter 409 `already_member`.
pub async fn promote_member(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (member, id) = member_in_path(&node, &headers, id)?;
    member.raft().promote(id, CATCH_UP_TIMEOUT).await?;
    Ok(status(State(node)).await)
}

/// The checks of a change to the member named in the path, in their documented order: a
/// cluster (409), the cluster token (401), a numeric id (400).
fn member_in_path<'a>(
    node: &'a Node,
    headers: &HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<(&'a ClusterNode, u64), ApiError> {
    let Path(id) = id?;
    let member = node.cluster().ok_or(ApiError::NotClustered)?;
    require_token(node, headers)?;
    let id = id
        .parse()
        .map_err(|_| ApiError::InvalidKey("a member id is a number"))?;
    Ok((member.as_ref(), id))
}

/// `DELETE /cluster/members/{id}`: removes a member. The leader removing itself first hands
/// leadership to the most caught-up voter, then has the new leader remove it and relays that
/// answer.
pub async fn remove_member(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (member, id) = member_in_path(&node, &headers, id)?;
    if id == member.raft().id() && member.is_leader() {
        let (status, body) = member.remove_self().await?;
        return Ok(json_response(status, body, None));
    }
    member.raft().remove_member(id).await?;
    Ok(status(State(node)).await)
}

/// Membership changes need the cluster secret (`Authorization: Bearer <token>`).
pub(super) fn require_token(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = node.config.cluster_token.as_deref().unwrap_or_default();
    let presented = headers.get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
    if hakv_api::bearer_matches(presented, token) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}
