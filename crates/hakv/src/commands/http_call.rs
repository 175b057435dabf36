//! One-off HTTP calls of the cluster commands (membership changes, status, readiness polls),
//! over plain TCP or TLS as the URL says.

use anyhow::Context;
use bytes::Bytes;
use hakv_tls::{ClientTls, Connector};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Calls with one trust configuration; each call is bounded by the caller's timeout.
#[derive(Clone)]
pub(super) struct Caller {
    client: Client<Connector, Full<Bytes>>,
}

impl Caller {
    pub(super) fn new(tls: Option<&ClientTls>) -> Caller {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(hakv_tls::connector(http, tls));
        Caller { client }
    }

    /// `method url` with an optional bearer `token` and JSON `body`: (status, body).
    pub(super) async fn request(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .with_context(|| format!("not a usable URL: {url}"))?;
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the answer of {url}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// True when `url` answers 200 within a second.
    pub(super) async fn is_ok(&self, url: &str) -> bool {
        let call = self.request("GET", url, None, "");
        matches!(
            tokio::time::timeout(Duration::from_secs(1), call).await,
            Ok(Ok((200, _)))
        )
    }
}

/// `https` when `url` is an https:// URL, else `http`: members of one cluster speak alike.
pub(super) fn scheme_of(url: &str) -> &'static str {
    if url.starts_with("https://") {
        "https"
    } else {
        "http"
    }
}
