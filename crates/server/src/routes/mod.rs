//! The HTTP API: `app(node)` builds the whole router, including limits and metrics.

mod backup;
mod cluster;
mod console;
mod data;
mod ops;
pub(crate) mod query;
mod scan;
mod tokens;

use crate::limits::track_request;
use crate::node::Node;
use axum::Router;
use axum::routing::{MethodFilter, delete, get, on, post};
use std::sync::Arc;

/// The node's HTTP API (documented in `docs/api.md`).
pub fn app(node: Arc<Node>) -> Router {
    let key_methods = MethodFilter::GET
        .or(MethodFilter::HEAD)
        .or(MethodFilter::POST)
        .or(MethodFilter::PUT)
        .or(MethodFilter::DELETE);
    let router = Router::new()
        .route(
            "/data/{*key}",
            on(key_methods, data::key_request).fallback(data::method_not_allowed),
        )
        .route(
            "/data/",
            on(key_methods, data::empty_key).fallback(data::method_not_allowed),
        )
        .route("/data", get(scan::scan).fallback(ops::only("GET, HEAD")))
        .route("/health", get(ops::health).fallback(ops::only("GET, HEAD")))
        .route("/ready", get(ops::ready).fallback(ops::only("GET, HEAD")))
        .route("/metrics", get(ops::metrics).fallback(ops::only("GET, HEAD")))
        .route("/cluster", get(cluster::status).fallback(ops::only("GET, HEAD")))
        .route(
            "/cluster/members",
            post(cluster::add_member).fallback(ops::only("POST")),
        )
        .route(
            "/cluster/members/{id}",
            delete(cluster::remove_member).fallback(ops::only("DELETE")),
        )
        .route(
            "/cluster/members/{id}/promote",
            post(cluster::promote_member).fallback(ops::only("POST")),
        )
        .route("/backup", get(backup::backup).fallback(ops::only("GET, HEAD")))
        .route(
            "/auth/tokens",
            get(tokens::list)
                .post(tokens::create)
                .fallback(ops::only("GET, HEAD, POST")),
        )
        .route(
            "/auth/tokens/{id}",
            delete(tokens::revoke).fallback(ops::only("DELETE")),
        )
        .route(
            "/openapi.json",
            get(ops::openapi).fallback(ops::only("GET, HEAD")),
        )
        .route("/ui", get(console::index).fallback(ops::only("GET, HEAD")))
        .route("/ui/", get(console::index).fallback(ops::only("GET, HEAD")))
        .route("/ui/{file}", get(console::file).fallback(ops::only("GET, HEAD")))
        .fallback(ops::route_not_found)
        .layer(axum::middleware::from_fn_with_state(node.clone(), track_request));
    let router = router.with_state(node.clone());
    // Peer and internal routes skip the client limits: shedding them would stall the cluster.
    match node.cluster() {
        Some(member) => {
            let token = node.config.cluster_token.as_deref().unwrap_or_default();
            router
                .merge(member.raft().peer_router())
                .merge(crate::cluster::internal::router(
                    member.clone(),
                    token,
                    node.config.max_body_bytes(),
                    node.config.request_timeout,
                ))
        }
        None => router,
    }
}
