//! Stable machine-readable error codes: the `code` field of every error body.

use serde::{Deserialize, Serialize};

/// Every error the HTTP API can report. The string form (`as_str`) is a stable contract for
/// scripts; the message next to it in the body is for people and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    KeyNotFound,
    RouteNotFound,
    MethodNotAllowed,
    InvalidJson,
    MissingValue,
    InvalidTtl,
    InvalidKey,
    KeyTooLong,
    ValueTooLarge,
    BodyTooLarge,
    UnsupportedContentType,
    InvalidPrecondition,
    PreconditionFailed,
    InvalidQuery,
    Overloaded,
    Timeout,
    RequestTimeout,
    Unavailable,
    DiskFull,
    Internal,
    NotLeader,
    NotClustered,
    MembershipRefused,
    AlreadyMember,
    NotMember,
    MemberUnreachable,
    CatchUpTimeout,
    Unauthorized,
    Forbidden,
    ReservedKey,
    InvalidToken,
    TokenNotFound,
    MalformedRequest,
    UriTooLong,
    HeadersTooLarge,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::MissingValue => "missing_value",
            ErrorCode::InvalidTtl => "invalid_ttl",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::KeyTooLong => "key_too_long",
            ErrorCode::ValueTooLarge => "value_too_large",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UnsupportedContentType => "unsupported_content_type",
            ErrorCode::InvalidPrecondition => "invalid_precondition",
            ErrorCode::PreconditionFailed => "precondition_failed",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Timeout => "timeout",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::Internal => "internal",
            ErrorCode::NotLeader => "not_leader",
            ErrorCode::NotClustered => "not_clustered",
            ErrorCode::MembershipRefused => "membership_refused",
            ErrorCode::AlreadyMember => "already_member",
            ErrorCode::NotMember => "not_member",
            ErrorCode::MemberUnreachable => "member_unreachable",
            ErrorCode::CatchUpTimeout => "catch_up_timeout",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ReservedKey => "reserved_key",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenNotFound => "token_not_found",
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
        }
    }
}
