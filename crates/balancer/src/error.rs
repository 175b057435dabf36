//! Why the balancer could not serve a request, and the one place that turns that into an HTTP
//! status and a JSON body `{"error": "...", "code": "..."}`.

use crate::body::ResponseBody;
use http::{Response, StatusCode, header};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no backend is available (all down, ejected or draining)")]
    NoBackend,
    #[error("could not connect to a backend: {0}")]
    Unreachable(String),
    #[error("the backend connection failed before a response: {0}")]
    Broken(String),
    #[error("the backend did not answer within {0} ms")]
    AttemptTimeout(u64),
    #[error("no answer within the total timeout of {0} ms")]
    TotalTimeout(u64),
    #[error("overloaded: too many requests in progress, retry later")]
    Overloaded { retry_after_secs: u32 },
    #[error("could not read the request body: {0}")]
    BadRequestBody(String),
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoBackend | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unreachable(_) | Self::Broken(_) => StatusCode::BAD_GATEWAY,
            Self::AttemptTimeout(_) | Self::TotalTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::BadRequestBody(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoBackend => "no_backend",
            Self::Unreachable(_) => "backend_unreachable",
            Self::Broken(_) => "backend_connection_failed",
            Self::AttemptTimeout(_) => "backend_timeout",
            Self::TotalTimeout(_) => "timeout",
            Self::Overloaded { .. } => "overloaded",
            Self::BadRequestBody(_) => "bad_request_body",
        }
    }

    pub fn into_response(self) -> Response<ResponseBody> {
        let retry_after = match self {
            Self::Overloaded { retry_after_secs } => Some(retry_after_secs),
            // Health checks may bring a backend back within a second or so.
            Self::NoBackend => Some(1),
            _ => None,
        };
        let body = serde_json::json!({ "error": self.to_string(), "code": self.code() });
        let mut resp = json_response(self.status(), &body);
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

/// A JSON response made by the balancer itself.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::local(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn errors_become_json_with_a_status_and_a_stable_code() {
        let resp = ProxyError::Overloaded { retry_after_secs: 2 }.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "overloaded");
        assert!(v["error"].as_str().unwrap().contains("overloaded"));
        assert_eq!(
            ProxyError::AttemptTimeout(5).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ProxyError::Unreachable("x".into()).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
