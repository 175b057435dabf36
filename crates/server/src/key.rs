//! Keys come from the raw request path: everything after `/data/`, decoded by the key codec
//! the client and the balancer share (`hakv_api::decode_key`). Decoding here (not in a
//! router extractor) keeps every failure a clear JSON error instead of a framework rejection.

use crate::ApiError;
use std::borrow::Cow;

const PREFIX: &str = "/data/";

/// The key named by a `/data/{key}` path.
pub fn key_from_path(path: &str) -> Result<Cow<'_, str>, ApiError> {
    let raw = path
        .strip_prefix(PREFIX)
        .ok_or(ApiError::InvalidKey("the path must start with /data/"))?;
    Ok(hakv_api::decode_key(raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_and_mistakes_become_api_errors() {
        assert_eq!(key_from_path("/data/a/b%20c").unwrap(), "a/b c");
        assert!(matches!(key_from_path("/other/x"), Err(ApiError::InvalidKey(_))));
        assert!(matches!(key_from_path("/data/"), Err(ApiError::InvalidKey(_))));
        assert!(matches!(key_from_path("/data/%zz"), Err(ApiError::InvalidKey(_))));
        assert!(matches!(
            key_from_path(&format!("/data/{}", "k".repeat(1025))),
            Err(ApiError::KeyTooLong { .. })
        ));
    }
}
