//! Leader-aware writes (optional): learn the Raft leader from the backends' `GET /cluster` and
//! send writes straight to it, saving the follower→leader forwarding hop.
//!
//! Contract with hakv nodes: `GET /cluster` answers JSON with a `leader` field naming the
//! leader's HTTP address — a string (`"127.0.0.1:7379"` or `"http://127.0.0.1:7379"`), or an
//! object with an `addr`/`address`/`http_addr` string — or `null` when there is none. The
//! address must match one of the balancer's backends to be used; otherwise writes go by the
//! configured algorithm, as do all reads.

use crate::algorithm::Pick;
use crate::config::ms;
use crate::pool::{BackendSet, Pool};
use crate::transport::BackendTransport;
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use hakv_tls::Connector;
use http::Method;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use tokio::sync::{Notify, watch};

#[derive(Debug, Default)]
pub struct LeaderTracker {
    leader: ArcSwapOption<String>,
    refresh: Notify,
}

/// Writes are what a follower would have to forward.
#[inline]
pub fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::PUT | Method::POST | Method::DELETE | Method::PATCH
    )
}

impl LeaderTracker {
    pub fn leader(&self) -> Option<String> {
        self.leader.load().as_deref().cloned()
    }

    pub fn set_leader(&self, leader: Option<String>) {
        self.leader.store(leader.map(Arc::new));
    }

    /// The leader's index in `set`, if it is there.
    pub fn leader_position(&self, set: &BackendSet) -> Option<usize> {
        set.find(self.leader.load().as_deref()?)
    }

    /// The leader's index in `set` if it may take this request now.
    pub fn leader_index(&self, set: &BackendSet, pick: &Pick<'_>) -> Option<usize> {
        let guard = self.leader.load();
        let leader = guard.as_deref()?;
        let i = set.find(leader)?;
        pick.eligible(&set.backends, i).then_some(i)
    }

    /// A write to the leader failed: forget it and look again now, so a new leader is followed
    /// within one `/cluster` round trip instead of one refresh interval.
    pub fn invalidate(&self) {
        self.leader.store(None);
        self.refresh.notify_one();
    }

    pub async fn run(
        self: Arc<Self>,
        transport: BackendTransport,
        pool: Arc<Pool>,
        refresh_ms: u64,
        timeout_ms: u64,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(transport.connector(HttpConnector::new()));
        loop {
            let found = self.ask(&client, transport.scheme_str(), &pool, timeout_ms).await;
            if found != self.leader() {
                tracing::info!(leader = ?found, "leader changed");
                self.set_leader(found);
            }
            tokio::select! {
                _ = tokio::time::sleep(ms(refresh_ms)) => {}
                _ = self.refresh.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Asks the available backends in turn (in panic mode, every one neither ejected nor
    /// draining: during an election all members may report not ready); the first that names a
    /// leader wins.
    async fn ask(
        &self,
        client: &Client<Connector, Empty<Bytes>>,
        scheme: &str,
        pool: &Pool,
        timeout_ms: u64,
    ) -> Option<String> {
        let set = pool.load();
        let panic = set.in_panic();
        for b in set.backends.iter().filter(|b| b.is_selectable(panic)) {
            if let Some(body) = cluster_view(client, scheme, b.addr(), ms(timeout_ms)).await
                && let Some(leader) = parse_leader(&body)
            {
                return Some(leader);
            }
        }
        None
    }
}

/// A backend's `GET /cluster` body (at most 1 MiB), if it answers 2xx within `timeout`.
pub(crate) async fn cluster_view(
    client: &Client<Connector, Empty<Bytes>>,
    scheme: &str,
    addr: impl std::fmt::Display,
    timeout: std::time::Duration,
) -> Option<Bytes> {
    let uri = format!("{scheme}://{addr}/cluster").parse::<http::Uri>().ok()?;
    let fetch = async {
        let resp = client.get(uri).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = Limited::new(resp.into_body(), 1 << 20).collect().await.ok()?;
        Some(body.to_bytes())
    };
    tokio::time::timeout(timeout, fetch).await.ok().flatten()
}

/// The leader's address from a `/cluster` body, normalised to `host:port`.
pub fn parse_leader(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let leader = v.get("leader")?;
    let addr = match leader {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Object(o) => ["addr", "address", "http_addr"]
            .iter()
            .find_map(|k| o.get(*k).and_then(|x| x.as_str()))?,
        _ => return None,
    };
    let addr = addr.strip_prefix("http://").unwrap_or(addr);
    let addr = addr.trim_end_matches('/');
    (!addr.is_empty()).then(|| addr.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_leader_in_each_accepted_shape() {
        assert_eq!(
            parse_leader(br#"{"leader":"127.0.0.1:7379"}"#).as_deref(),
            Some("127.0.0.1:7379")
        );
        assert_eq!(
            parse_leader(br#"{"leader":"http://127.0.0.1:7379/","term":3}"#).as_deref(),
            Some("127.0.0.1:7379")
        );
        assert_eq!(
            parse_leader(br#"{"leader":{"id":2,"addr":"10.0.0.2:80"}}"#).as_deref(),
            Some("10.0.0.2:80")
        );
        assert_eq!(parse_leader(br#"{"leader":null}"#), None);
        assert_eq!(parse_leader(b"not json"), None);
    }
}
