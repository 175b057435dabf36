//! `GET /cluster`: who leads, the term, the members and how far each follower lags.

use super::data::json_response;
use crate::node::Node;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
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
