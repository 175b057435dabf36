//! `Client::backup`: streams `GET /backup` (a consistent snapshot of a node's state) into a
//! writer, in bounded memory, with a progress callback.

use crate::client::{Answer, Client, error_chain, status_error};
use crate::error::ClientError;
use hakv_api::Revision;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// What a finished backup download was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupDownload {
    /// The state's revision at the snapshot's point (the server's `X-Hakv-Revision`).
    pub revision: Revision,
    pub bytes: u64,
}

impl Client {
    /// Downloads a backup into `out`, calling `progress` with the bytes so far. `token` is
    /// the cluster secret (cluster members require it). The per-call timeout bounds the wait
    /// for the answer and for each piece of the body, not the whole download. The bytes are
    /// not checked here: see `hakv_store::StateMachine::verify_snapshot`.
    pub async fn backup(
        &self,
        token: Option<&str>,
        out: &mut (impl AsyncWrite + Unpin),
        mut progress: impl FnMut(u64),
    ) -> Result<BackupDownload, ClientError> {
        let url = format!("{}/backup", self.base);
        let mut request = Request::new(Full::default());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = url.parse().map_err(|_| ClientError::InvalidUrl {
            url: url.clone(),
            reason: "cannot form a request URL".into(),
        })?;
        if let Some(token) = token {
            let value =
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::InvalidUrl {
                    url: url.clone(),
                    reason: "the token is not a valid header value".into(),
                })?;
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let transport = |e: Box<dyn std::error::Error + Send + Sync>| ClientError::Transport {
            source: e,
            idempotent: true,
        };
        let response = tokio::time::timeout(self.timeout, self.http.request(request))
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|e| match e.is_connect() {
                true => ClientError::Connect {
                    url: self.base.clone(),
                    source: error_chain(&e).into(),
                },
                false => transport(Box::new(e)),
            })?;
        let (parts, mut body) = response.into_parts();
        if parts.status != StatusCode::OK {
            let body = tokio::time::timeout(
                self.timeout,
                http_body_util::Limited::new(body, 1 << 20).collect(),
            )
            .await
            .map_err(|_| self.timed_out())?
            .map_err(transport)?
            .to_bytes();
            return Err(status_error(&Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            }));
        }
        let revision = parts
            .headers
            .get("x-hakv-revision")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(Revision)
            .ok_or_else(|| ClientError::InvalidResponse {
                reason: "a backup answer without X-Hakv-Revision".into(),
            })?;
        let mut bytes = 0u64;
        loop {
            let frame = tokio::time::timeout(self.timeout, body.frame())
                .await
                .map_err(|_| self.timed_out())?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| transport(Box::new(e)))?;
            if let Ok(data) = frame.into_data() {
                out.write_all(&data).await.map_err(|e| transport(Box::new(e)))?;
                bytes += data.len() as u64;
                progress(bytes);
            }
        }
        out.flush().await.map_err(|e| transport(Box::new(e)))?;
        Ok(BackupDownload { revision, bytes })
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Timeout {
            after: self.timeout,
            idempotent: true,
        }
    }
}
