//! `Client`: typed calls over a pooled keep-alive hyper-util client.

use crate::error::ClientError;
use crate::types::{
    Consistency, Deleted, Entry, Precondition, Probe, ServerStatus, WriteMethod, WriteOptions, Written,
};
use bytes::Bytes;
use hakv_api::{Revision, ScanPage};
use hakv_api::{data_path, query_value};
use hakv_tls::{ClientTls, Connector};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Most a scan page may hold (the server refuses larger `limit`s).
pub const MAX_PAGE: usize = 1000;
/// Cap on any answer body we read: a value is at most 1 MiB, a scan page 1000 of them.
const MAX_BODY: usize = 1 << 30;

/// A handle to one hakv endpoint (a node or a balancer). Cheap to clone; clones share the pool.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) http: HyperClient<Connector, Full<Bytes>>,
    /// `http[s]://host:port` plus any base path, without a trailing `/`.
    pub(crate) base: String,
    pub(crate) timeout: Duration,
    /// `Bearer <token>` on every request, when the server requires a token.
    pub(crate) authorization: Option<HeaderValue>,
}

/// An answer read in full.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Client {
    /// A client for `url` (`http://host:port`), with a per-call `timeout` (connecting included).
    pub fn new(url: &str, timeout: Duration) -> Result<Client, ClientError> {
        Client::with_tls(url, timeout, None)
    }

    /// A client for `url` that verifies an `https://` server with `tls` (its CA, and a client
    /// certificate for servers that require one); without `tls`, with the system's roots.
    pub fn with_tls(url: &str, timeout: Duration, tls: Option<&ClientTls>) -> Result<Client, ClientError> {
        hakv_api::parse_base_url(url).map_err(|reason| ClientError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        })?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let connector = hakv_tls::connector(connector, tls);
        let http = HyperClient::builder(TokioExecutor::new())
            // Below the idle timeouts servers commonly use, so we rarely reuse a dying connection.
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            http,
            base: url.trim_end_matches('/').to_string(),
            timeout,
            authorization: None,
        })
    }

    /// This client, sending `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: &str) -> Result<Client, ClientError> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::InvalidResponse {
                reason: "a token must be visible ASCII characters".into(),
            })?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    /// `GET /data/{key}`: `None` when the key does not exist (or has expired).
    pub async fn get(&self, key: &str, consistency: Consistency) -> Result<Option<Entry>, ClientError> {
        let path = with_query(data_path(key), consistency.query());
        let answer = self.send(Method::GET, &path, HeaderMap::new(), None).await?;
        match answer.status {
            StatusCode::OK => {
                let body: serde_json::Value = parse_json(&answer.body)?;
                let data = body
                    .get("data")
                    .cloned()
                    .ok_or_else(|| invalid("a read answer without \"data\""))?;
                Ok(Some(Entry {
                    data,
                    revision: etag_revision(&answer.headers),
                }))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&answer)),
        }
    }

    /// `PUT` (or `POST`) `/data/{key}` with `{"value": value}` and an optional TTL and condition.
    pub async fn put(
        &self,
        key: &str,
        value: &serde_json::Value,
        options: &WriteOptions,
    ) -> Result<Written, ClientError> {
        let mut body = serde_json::json!({ "value": value });
        if let Some(ttl) = options.ttl_seconds {
            body["ttl_seconds"] = ttl.into();
        }
        let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| invalid(&e.to_string()))?);
        let mut headers = precondition_headers(options.precondition);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let method = match options.method {
            WriteMethod::Put => Method::PUT,
            WriteMethod::Post => Method::POST,
        };
        let answer = self.send(method, &data_path(key), headers, Some(body)).await?;
        match answer.status {
            StatusCode::OK | StatusCode::CREATED => Ok(Written {
                created: answer.status == StatusCode::CREATED,
                revision: etag_revision(&answer.headers),
            }),
            _ => Err(status_error(&answer)),
        }
    }

    /// `DELETE /data/{key}`, optionally only at a given revision.
    pub async fn delete(&self, key: &str, precondition: Precondition) -> Result<Deleted, ClientError> {
        let headers = precondition_headers(precondition);
        let answer = self.send(Method::DELETE, &data_path(key), headers, None).await?;
        match answer.status {
            StatusCode::OK | StatusCode::NO_CONTENT => Ok(Deleted::Deleted {
                revision: etag_revision(&answer.headers),
            }),
            StatusCode::NOT_FOUND => Ok(Deleted::NotFound),
            _ => Err(status_error(&answer)),
        }
    }

    /// One page of `GET /data?prefix=&limit=&cursor=`; pass `next_cursor` back for the next.
    pub async fn scan_page(
        &self,
        prefix: &str,
        limit: usize,
        cursor: Option<&str>,
        consistency: Consistency,
    ) -> Result<ScanPage, ClientError> {
        let mut path = format!(
            "/data?prefix={}&limit={}",
            query_value(prefix),
            limit.clamp(1, MAX_PAGE)
        );
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.push_str(&query_value(cursor));
        }
        if let Some(q) = consistency.query() {
            path.push('&');
            path.push_str(q);
        }
        let answer = self.send(Method::GET, &path, HeaderMap::new(), None).await?;
        if answer.status != StatusCode::OK {
            return Err(status_error(&answer));
        }
        parse_json(&answer.body)
    }

    /// `/health`, `/ready` and `/cluster` (absent when the server answers 404).
    pub async fn status(&self) -> Result<ServerStatus, ClientError> {
        let health = self.probe("/health").await?;
        let ready = self.probe("/ready").await?;
        let cluster = self.probe("/cluster").await?;
        Ok(ServerStatus {
            health,
            ready,
            cluster: (cluster.status != 404).then_some(cluster),
        })
    }

    async fn probe(&self, path: &'static str) -> Result<Probe, ClientError> {
        let answer = self.send(Method::GET, path, HeaderMap::new(), None).await?;
        let body = serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&answer.body).trim().to_string())
        });
        Ok(Probe {
            path,
            status: answer.status.as_u16(),
            body,
        })
    }

    /// Sends one request and reads the whole answer within the timeout.
    pub(crate) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Answer, ClientError> {
        let idempotent = method != Method::POST;
        let url = format!("{}{}", self.base, path_and_query);
        let mut request = Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = url.parse().map_err(|_| ClientError::InvalidUrl {
            url: url.clone(),
            reason: "cannot form a request URL".into(),
        })?;
        *request.headers_mut() = headers;
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, authorization.clone());
        }
        let call = async {
            let response = self.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    ClientError::Connect {
                        url: self.base.clone(),
                        // hyper-util's own message is just "client error (Connect)"; the
                        // cause (refused, unreachable, …) is further down the chain.
                        source: error_chain(&e).into(),
                    }
                } else {
                    ClientError::Transport {
                        source: Box::new(e),
                        idempotent,
                    }
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|source| ClientError::Transport { source, idempotent })?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ClientError::Timeout {
                after: self.timeout,
                idempotent,
            })?
    }
}

/// `outer: cause: root cause`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn with_query(mut path: String, query: Option<&str>) -> String {
    if let Some(query) = query {
        path.push('?');
        path.push_str(query);
    }
    path
}

fn precondition_headers(precondition: Precondition) -> HeaderMap {
    let mut headers = HeaderMap::new();
    match precondition {
        Precondition::None => {}
        Precondition::IfMatch(revision) => {
            if let Ok(value) = HeaderValue::from_str(&revision.etag()) {
                headers.insert(header::IF_MATCH, value);
            }
        }
        Precondition::IfAbsent => {
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        }
    }
    headers
}

fn etag_revision(headers: &HeaderMap) -> Option<Revision> {
    headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(Revision::parse_etag)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| invalid(&format!("bad JSON: {e}")))
}

fn invalid(reason: &str) -> ClientError {
    ClientError::InvalidResponse {
        reason: reason.to_string(),
    }
}

/// The typed error for a non-success answer, from its `{"error", "code"}` body when present.
pub(crate) fn status_error(answer: &Answer) -> ClientError {
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    if answer.status == StatusCode::PRECONDITION_FAILED {
        // The body's `current_revision` is authoritative (null: no such key); ETag is a fallback.
        let current = match body.get("current_revision") {
            Some(value) => value.as_u64().map(Revision),
            None => etag_revision(&answer.headers),
        };
        return ClientError::PreconditionFailed { current };
    }
    let message = body
        .get("error")
        .and_then(|e| e.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            answer
                .status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_string()
        });
    ClientError::Status {
        status: answer.status.as_u16(),
        code: body.get("code").and_then(|c| c.as_str()).map(str::to_string),
        message,
        retry_after: answer
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs),
    }
}
