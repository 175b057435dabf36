//! Every way a request can fail, and the one place where a failure becomes an HTTP status
//! and a JSON body `{"code", "error"}`.

use axum::response::{IntoResponse, Response};
use hakv_api::{ErrorBody, ErrorCode, Revision};
use hakv_raft::MembershipError;
use hakv_store::ProposeError;
use http::{HeaderValue, StatusCode, header};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Key not found")]
    KeyNotFound,
    #[error("No such route: {0}")]
    RouteNotFound(String),
    #[error("Method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed { method: String, allowed: &'static str },
    #[error("The body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("The body must be a JSON object with a \"value\" field")]
    MissingValue,
    #[error("ttl_seconds must be a whole number of seconds between 1 and {max}")]
    InvalidTtl { max: u64 },
    #[error("Invalid key: {0}")]
    InvalidKey(&'static str),
    #[error("The key is longer than {max} bytes")]
    KeyTooLong { max: usize },
    #[error("The value is {size} bytes as JSON; the limit is {limit}")]
    ValueTooLarge { size: usize, limit: u64 },
    #[error("The request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("The body must be JSON: send Content-Type: application/json")]
    UnsupportedContentType,
    #[error("Invalid precondition header: {0}")]
    InvalidPrecondition(&'static str),
    #[error("The precondition failed: the key's current revision is {}", .current.map_or("none (absent)".to_string(), |r| r.to_string()))]
    PreconditionFailed { current: Option<Revision> },
    #[error("Invalid query: {0}")]
    InvalidQuery(String),
    #[error("The server is at its limit of {0}; retry shortly")]
    Overloaded(&'static str),
    #[error("The request timed out; a write may or may not have been applied")]
    Timeout,
    /// The request's body did not arrive in full within the request timeout.
    #[error("The request body did not arrive in full within the request timeout; nothing was done")]
    RequestTimeout,
    #[error("The service is unavailable: {0}")]
    Unavailable(String),
    #[error("The disk is full; nothing was written")]
    DiskFull,
    /// A write whose fate is not known (the leader changed or went silent after it was sent).
    #[error("The write's outcome is unknown (it may or may not have been applied): {0}")]
    OutcomeUnknown(String),
    /// Membership changes are made on the leader.
    #[error("This member is not the leader; send membership changes to {}", .leader.as_deref().unwrap_or("the leader (none is known yet)"))]
    NotLeader { leader: Option<String> },
    #[error("This needs the cluster secret: Authorization: Bearer <token>")]
    Unauthorized,
    /// Client authentication: no token, or one that is unknown or revoked.
    #[error("{0}")]
    AuthRequired(String),
    /// The token is valid but does not grant what the request needs.
    #[error("{0}")]
    Forbidden(String),
    #[error("Keys starting with .hakv/ are reserved for hakv's own records")]
    ReservedKey,
    /// A token request (`POST /auth/tokens`) that cannot be honoured.
    #[error("Invalid token request: {0}")]
    InvalidToken(String),
    #[error("No token with this id")]
    TokenNotFound,
    #[error("This node runs alone (no --peers): it has no cluster membership to change")]
    NotClustered,
    #[error("The membership change was refused: {0}")]
    MembershipRefused(String),
    #[error("{0}")]
    AlreadyMember(String),
    #[error("{0}")]
    NotMember(String),
    #[error("{0}")]
    MemberUnreachable(String),
    /// The new member was added as a learner but did not catch up in time.
    #[error("{0}")]
    CatchUpTimeout(String),
    /// An error another cluster member answered a forwarded request with, passed on as is.
    #[error("{message}")]
    Relayed {
        status: u16,
        code: ErrorCode,
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::KeyNotFound | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidJson(_)
            | ApiError::MissingValue
            | ApiError::InvalidTtl { .. }
            | ApiError::InvalidKey(_)
            | ApiError::InvalidPrecondition(_)
            | ApiError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::KeyTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::ValueTooLarge { .. } | ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout | ApiError::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::NotLeader { .. } => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Unauthorized | ApiError::AuthRequired(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::ReservedKey | ApiError::InvalidToken(_) => StatusCode::BAD_REQUEST,
            ApiError::TokenNotFound => StatusCode::NOT_FOUND,
            ApiError::NotClustered | ApiError::MembershipRefused(_) | ApiError::AlreadyMember(_) => {
                StatusCode::CONFLICT
            }
            ApiError::NotMember(_) => StatusCode::NOT_FOUND,
            ApiError::MemberUnreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::CatchUpTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Relayed { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::KeyNotFound => ErrorCode::KeyNotFound,
            ApiError::RouteNotFound(_) => ErrorCode::RouteNotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::InvalidJson(_) => ErrorCode::InvalidJson,
            ApiError::MissingValue => ErrorCode::MissingValue,
            ApiError::InvalidTtl { .. } => ErrorCode::InvalidTtl,
            ApiError::InvalidKey(_) => ErrorCode::InvalidKey,
            ApiError::KeyTooLong { .. } => ErrorCode::KeyTooLong,
            ApiError::ValueTooLarge { .. } => ErrorCode::ValueTooLarge,
            ApiError::BodyTooLarge { .. } => ErrorCode::BodyTooLarge,
            ApiError::UnsupportedContentType => ErrorCode::UnsupportedContentType,
            ApiError::InvalidPrecondition(_) => ErrorCode::InvalidPrecondition,
            ApiError::PreconditionFailed { .. } => ErrorCode::PreconditionFailed,
            ApiError::InvalidQuery(_) => ErrorCode::InvalidQuery,
            ApiError::Overloaded(_) => ErrorCode::Overloaded,
            ApiError::Timeout => ErrorCode::Timeout,
            ApiError::RequestTimeout => ErrorCode::RequestTimeout,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::DiskFull => ErrorCode::DiskFull,
            ApiError::OutcomeUnknown(_) => ErrorCode::Timeout,
            ApiError::NotLeader { .. } => ErrorCode::NotLeader,
            ApiError::Unauthorized | ApiError::AuthRequired(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::ReservedKey => ErrorCode::ReservedKey,
            ApiError::InvalidToken(_) => ErrorCode::InvalidToken,
            ApiError::TokenNotFound => ErrorCode::TokenNotFound,
            ApiError::NotClustered => ErrorCode::NotClustered,
            ApiError::MembershipRefused(_) => ErrorCode::MembershipRefused,
            ApiError::AlreadyMember(_) => ErrorCode::AlreadyMember,
            ApiError::NotMember(_) => ErrorCode::NotMember,
            ApiError::MemberUnreachable(_) => ErrorCode::MemberUnreachable,
            ApiError::CatchUpTimeout(_) => ErrorCode::CatchUpTimeout,
            ApiError::Relayed { code, .. } => *code,
        }
    }
}

impl From<MembershipError> for ApiError {
    fn from(err: MembershipError) -> Self {
        let message = err.to_string();
        match err {
            MembershipError::NotLeader { leader } => ApiError::NotLeader {
                leader: leader.map(|(_, addr)| addr),
            },
            MembershipError::Refused(why) => ApiError::MembershipRefused(why),
            MembershipError::Unknown(why) => ApiError::OutcomeUnknown(why),
            MembershipError::AlreadyMember { .. } => ApiError::AlreadyMember(message),
            MembershipError::NotMember(_) => ApiError::NotMember(message),
            MembershipError::Unreachable { .. } => ApiError::MemberUnreachable(message),
            MembershipError::CatchUpTimeout { .. } => ApiError::CatchUpTimeout(message),
        }
    }
}

impl From<hakv_api::KeyError> for ApiError {
    fn from(err: hakv_api::KeyError) -> Self {
        match err {
            hakv_api::KeyError::TooLong => ApiError::KeyTooLong {
                max: hakv_api::MAX_KEY_BYTES,
            },
            hakv_api::KeyError::Empty => ApiError::InvalidKey("the key is empty"),
            hakv_api::KeyError::CutEscape => ApiError::InvalidKey("a % escape is cut short"),
            hakv_api::KeyError::BadEscape => ApiError::InvalidKey("a % escape is not two hex digits"),
            hakv_api::KeyError::NotUtf8 => {
                ApiError::InvalidKey("the key is not valid UTF-8 after percent-decoding")
            }
        }
    }
}

/// A path parameter axum could not take (`/auth/tokens/%FF`): a JSON 400 like every other.
impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        ApiError::InvalidKey("a path segment is not valid UTF-8 after percent-decoding")
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        match err {
            crate::auth::AuthError::Forbidden(_) => ApiError::Forbidden(err.to_string()),
            _ => ApiError::AuthRequired(err.to_string()),
        }
    }
}

impl From<ProposeError> for ApiError {
    fn from(err: ProposeError) -> Self {
        match err {
            ProposeError::QueueFull => ApiError::Overloaded("queued writes"),
            ProposeError::Refused(message) => ApiError::Unavailable(format!("storage failure: {message}")),
            ProposeError::Unknown(message) => ApiError::OutcomeUnknown(message),
            ProposeError::Closed => ApiError::Unavailable("the node is shutting down".into()),
        }
    }
}

/// Why the node answered 5xx, kept on the response for the log line that names the request.
#[derive(Debug, Clone)]
pub struct ServerErrorReason(pub String);

/// Whether an answer with `status` gets a WARN line naming its request (the client's own or
/// one forwarded to this leader): every 5xx but 503. 503s (shedding, no leader, a failed store)
/// come in floods and are counted and explained elsewhere.
pub fn worth_a_log_line(status: StatusCode) -> bool {
    status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let current = match &self {
            ApiError::PreconditionFailed { current } => Some(*current),
            _ => None,
        };
        let body = ErrorBody {
            code: self.code(),
            error: self.to_string(),
            current_revision: current,
        };
        let mut bytes = serde_json::to_vec(&body).expect("error bodies serialize");
        bytes.push(b'\n');
        let mut response = (status, bytes).into_response();
        if status.is_server_error() {
            // For the log line about this request (`limits::track_request`).
            response.extensions_mut().insert(ServerErrorReason(body.error));
        }
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::MethodNotAllowed { allowed, .. } = &self {
            headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        if let Some(Some(revision)) = current {
            headers.insert(
                header::ETAG,
                HeaderValue::from_str(&revision.etag()).expect("digits and quotes"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_4xx_and_name_their_code() {
        for err in [
            ApiError::InvalidJson("x".into()),
            ApiError::MissingValue,
            ApiError::KeyTooLong { max: 1024 },
            ApiError::UnsupportedContentType,
            ApiError::PreconditionFailed { current: None },
        ] {
            assert!(err.status().is_client_error(), "{err:?}");
        }
        let response = ApiError::Overloaded("in-flight requests").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
