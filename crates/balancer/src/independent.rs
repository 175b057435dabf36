//! A check at start: backends that are independent single nodes (`GET /cluster` answers
//! `"mode": "single"`) each hold only the keys written to them, so behind one balancer a read
//! can miss a write that went to another. That is a valid setup only for stateless tests, and
//! a common mistake when trying hakv, so the balancer says so in its log.

use crate::leader::cluster_view;
use crate::pool::Pool;
use crate::transport::BackendTransport;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Asks every backend once and warns if two or more are single nodes.
pub async fn warn_if_independent(pool: &Pool, timeout: Duration, transport: &BackendTransport) {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(transport.connector(HttpConnector::new()));
    let set = pool.load();
    let mut singles = Vec::new();
    for backend in set.backends.iter() {
        let view = cluster_view(&client, transport.scheme_str(), backend.addr(), timeout).await;
        let status = view.and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok());
        if status.is_some_and(|s| s["mode"] == "single") {
            singles.push(backend.addr().to_string());
        }
    }
    if singles.len() >= 2 {
        tracing::warn!(
            backends = %singles.join(", "),
            "these backends are independent single nodes: each holds only the keys written to \
             it, so a read can miss a write another one took; put the members of one cluster \
             behind the balancer (hakv cluster up starts one)"
        );
    }
}
