//! Reading a request's body: bounded by a limit, refused at once when its declared length is
//! already over it (before a byte of it is read), and marked as the client's part of the
//! request, so a timeout while it trickles in is answered 408, not 504.

use crate::ApiError;
use crate::limits::reading_body;
use axum::body::{Body, Bytes};
use http_body::Body as _;

/// The whole body, at most `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    // hyper reports a request's Content-Length as an exact size hint.
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::BodyTooLarge { limit });
    }
    reading_body(axum::body::to_bytes(body, limit))
        .await
        .map_err(|err| {
            if std::error::Error::source(&err).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
                ApiError::BodyTooLarge { limit }
            } else {
                ApiError::InvalidJson(format!("the body could not be read: {err}"))
            }
        })
}
