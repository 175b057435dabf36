//! `ClientError`: why a call failed, and whether trying again can help.

use hakv_api::Revision;
use std::time::Duration;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// A failed call. "Not found" is not an error: `get` answers `None`, `delete` `NotFound`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The TLS files given (CA, client certificate) cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] hakv_tls::TlsError),
    /// The request never reached the server, so it is always safe to retry.
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: Source },
    /// No answer in time. For a write the outcome is unknown: it may or may not have happened.
    #[error("no answer within {after:?}")]
    Timeout { after: Duration, idempotent: bool },
    /// The connection broke after the request was (maybe) sent.
    #[error("connection failed: {source}")]
    Transport { source: Source, idempotent: bool },
    /// `If-Match` / `If-None-Match: *` did not hold; `current` is the key's revision now
    /// (`None` when the key does not exist).
    #[error("precondition failed (current revision: {})", current.map_or("none".into(), |r| r.to_string()))]
    PreconditionFailed { current: Option<Revision> },
    /// Any other non-success answer, with the server's `{"error", "code"}` when it sent one.
    #[error("HTTP {status}: {message}{}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        status: u16,
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("unexpected answer: {reason}")]
    InvalidResponse { reason: String },
}

impl ClientError {
    /// Whether sending the same request again may succeed without changing meaning: never for a
    /// failed condition or bad input; for timeouts and broken connections only when the request
    /// was idempotent (a repeated POST could apply twice).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. } => true,
            ClientError::Timeout { idempotent, .. } | ClientError::Transport { idempotent, .. } => {
                *idempotent
            }
            ClientError::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            ClientError::InvalidUrl { .. }
            | ClientError::Tls(_)
            | ClientError::PreconditionFailed { .. }
            | ClientError::InvalidResponse { .. } => false,
        }
    }

    /// How long the server asked us to wait before retrying (429/503 `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The request surely did not reach a server, or the server did not answer at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Connect { .. } | ClientError::Timeout { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> ClientError {
        ClientError::Status {
            status: code,
            code: None,
            message: String::new(),
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    #[test]
    fn retryability() {
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(500).is_retryable());
        assert!(!ClientError::PreconditionFailed { current: None }.is_retryable());
        let after = Duration::from_secs(1);
        assert!(
            ClientError::Timeout {
                after,
                idempotent: true
            }
            .is_retryable()
        );
        assert!(
            !ClientError::Timeout {
                after,
                idempotent: false
            }
            .is_retryable()
        );
        assert_eq!(status(503).retry_after(), Some(after));
    }

    #[test]
    fn messages() {
        let e = ClientError::PreconditionFailed {
            current: Some(Revision(7)),
        };
        assert_eq!(e.to_string(), "precondition failed (current revision: 7)");
        let e = ClientError::Status {
            status: 413,
            code: Some("value_too_large".into()),
            message: "too big".into(),
            retry_after: None,
        };
        assert_eq!(e.to_string(), "HTTP 413: too big (value_too_large)");
    }
}
