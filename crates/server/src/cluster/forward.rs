//! Follower → leader requests on the internal routes: forwarded writes and read indexes.
//! One pooled keep-alive client, authenticated with the cluster token.

use super::internal::{FORWARDED_REQUEST_IDS, PROPOSE_PATH, READ_INDEX_PATH, Reply, forwarded_request_ids};
use crate::limits::current_request_id;
use bytes::Bytes;
use hakv_api::REQUEST_ID;
use hakv_store::{Command, Outcome};
use hakv_tls::{ClientTls, Connector};
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a forwarded request got no answer from the leader.
#[derive(Debug, Clone)]
pub enum ForwardError {
    /// The request never reached the leader (connection refused): nothing was applied.
    NotSent(String),
    /// It may have reached the leader: a write's outcome is unknown.
    Unknown(String),
}

pub struct Forwarder {
    client: Client<Connector, Full<Bytes>>,
    /// `http`, or `https` when members speak TLS.
    scheme: &'static str,
    authorization: http::HeaderValue,
    timeout: Duration,
}

impl Forwarder {
    pub fn new(token: &str, timeout: Duration, tls: Option<&ClientTls>) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(500)));
        let connector = hakv_tls::connector(connector, tls);
        let client = Client::builder(TokioExecutor::new())
            // Shorter than the leader's keep-alive, so a pooled connection is not reused just
            // as the leader closes it.
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let authorization = format!("Bearer {token}").parse().expect("tokens are header-safe");
        Forwarder {
            client,
            scheme: if tls.is_some() { "https" } else { "http" },
            authorization,
            timeout,
        }
    }

    /// Proposes `commands` on the leader; its answers come back in the same order. The
    /// commands go in bincode (values as their canonical bytes, not escaped again), the
    /// client requests' ids (`request_ids`, in the same order) in a header.
    pub async fn propose_batch(
        &self,
        leader: &str,
        commands: &[&Command],
        request_ids: &[Option<&HeaderValue>],
    ) -> Result<Vec<Reply<Outcome>>, ForwardError> {
        let body = bincode::serialize(commands).expect("commands serialize");
        let ids = forwarded_request_ids(request_ids).map(|ids| (FORWARDED_REQUEST_IDS, ids));
        self.call(leader, PROPOSE_PATH, body, "application/octet-stream", ids)
            .await
    }

    /// Sends `DELETE /cluster/members/{id}` to the leader; its status and body come back as
    /// they are, for the caller to relay.
    pub async fn remove_member(
        &self,
        leader: &str,
        id: u64,
    ) -> Result<(http::StatusCode, Bytes), ForwardError> {
        let mut request = http::Request::delete(format!("{}://{leader}/cluster/members/{id}", self.scheme))
            .header(http::header::AUTHORIZATION, self.authorization.clone());
        if let Some(id) = current_request_id() {
            request = request.header(REQUEST_ID, id);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| ForwardError::NotSent(e.to_string()))?;
        self.exchange(request).await
    }

    /// Asks the leader for a read index on behalf of one round of this member's readers
    /// (`request_ids`: theirs, sent as a forwarded batch's are).
    pub async fn read_index(
        &self,
        leader: &str,
        request_ids: &[Option<&HeaderValue>],
    ) -> Result<Reply<u64>, ForwardError> {
        let ids = forwarded_request_ids(request_ids).map(|ids| (FORWARDED_REQUEST_IDS, ids));
        self.call(leader, READ_INDEX_PATH, Vec::new(), "application/json", ids)
            .await
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        leader: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &'static str,
        extra_header: Option<(http::HeaderName, HeaderValue)>,
    ) -> Result<T, ForwardError> {
        let mut request = http::Request::post(format!("{}://{leader}{path}", self.scheme))
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .header(http::header::CONTENT_TYPE, content_type);
        if let Some((name, value)) = extra_header {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ForwardError::NotSent(e.to_string()))?;
        let (status, bytes) = self.exchange(request).await?;
        // The leader's guard (`internal.rs`) answers 401 and 503 before reading the request:
        // nothing was done. Anything else but success may come after the leader acted.
        if matches!(
            status,
            http::StatusCode::UNAUTHORIZED | http::StatusCode::SERVICE_UNAVAILABLE
        ) {
            return Err(ForwardError::NotSent(format!("the leader refused it: {status}")));
        }
        if !status.is_success() {
            return Err(ForwardError::Unknown(format!("the leader answered {status}")));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ForwardError::Unknown(format!("bad reply from the leader: {e}")))
    }

    /// Sends `request` and collects the answer, within the timeout. Only a failure to connect
    /// is `NotSent`: after that, the leader may have acted on the request.
    async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(http::StatusCode, Bytes), ForwardError> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    ForwardError::NotSent(e.to_string())
                } else {
                    ForwardError::Unknown(e.to_string())
                }
            })?;
            let status = response.status();
            let body = response.into_body().collect().await;
            let body = body.map_err(|e| ForwardError::Unknown(e.to_string()))?.to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(ForwardError::Unknown("the leader did not answer in time".into())))
    }
}
