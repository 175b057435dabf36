//! Operational endpoints: liveness, readiness, Prometheus metrics, this API's OpenAPI document,
//! and the JSON answers for unknown routes and methods.

use crate::ApiError;
use crate::node::Node;
use crate::observability;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use std::sync::Arc;

/// Liveness: the process answers.
pub async fn health() -> Response {
    super::data::json_response(StatusCode::OK, "{\"status\":\"ok\"}\n".into(), None)
}

/// Readiness: the node can serve reads and writes.
pub async fn ready(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    if let Some(why) = node.not_ready_because() {
        return Err(ApiError::Unavailable(why.into()));
    }
    // Ready to serve reads; a nearly full disk refuses writes, and says so here.
    let body = if node.disk.is_low() {
        format!(
            "{{\"status\":\"ready\",\"writes\":\"refused: the disk is nearly full ({} bytes free, reserve {})\"}}\n",
            node.disk.free_bytes(),
            node.disk.reserve_bytes()
        )
    } else {
        "{\"status\":\"ready\"}\n".to_owned()
    };
    Ok(super::data::json_response(StatusCode::OK, body.into(), None))
}

pub async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let mut response = observability::render(&node).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().chars().take(200).collect())
}

/// The 405 answer (a JSON error with `Allow`) of a route that serves only `allowed`.
pub fn only(
    allowed: &'static str,
) -> impl Fn(Method) -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    move |method: Method| {
        std::future::ready(ApiError::MethodNotAllowed {
            method: method.to_string(),
            allowed,
        })
    }
}

/// `GET /openapi.json`: the OpenAPI 3.1 description of this API (`crates/server/openapi.json`,
/// checked against the router by the tests and against live nodes by schemathesis).
pub async fn openapi() -> Response {
    let mut response = (StatusCode::OK, include_str!("../../openapi.json")).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
