//! Keys come from the raw request path: everything after `/data/`, percent-decoded, UTF-8,
//! 1 to 1024 bytes. Decoding here (not in a router extractor) keeps every failure a clear
//! JSON error instead of a framework rejection.

use crate::ApiError;
use hakv_api::MAX_KEY_BYTES;
use std::borrow::Cow;

const PREFIX: &str = "/data/";

/// The key named by a `/data/{key}` path.
pub fn key_from_path(path: &str) -> Result<Cow<'_, str>, ApiError> {
    let raw = path
        .strip_prefix(PREFIX)
        .ok_or(ApiError::InvalidKey("the path must start with /data/"))?;
    if raw.is_empty() {
        return Err(ApiError::InvalidKey("the key is empty"));
    }
    let key = if raw.contains('%') {
        Cow::Owned(percent_decode(raw)?)
    } else {
        Cow::Borrowed(raw)
    };
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::KeyTooLong { max: MAX_KEY_BYTES });
    }
    Ok(key)
}

fn percent_decode(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(ApiError::InvalidKey("a % escape is cut short"))?;
            // Exactly two hex digits: `from_str_radix` alone would also take `%+f`.
            let (Some(high), Some(low)) = (hex_value(hex[0]), hex_value(hex[1])) else {
                return Err(ApiError::InvalidKey("a % escape is not two hex digits"));
            };
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::InvalidKey("the key is not valid UTF-8 after percent-decoding"))
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_and_checked() {
        assert_eq!(key_from_path("/data/plain").unwrap(), "plain");
        assert_eq!(key_from_path("/data/a/b/c").unwrap(), "a/b/c");
        assert_eq!(key_from_path("/data/caf%C3%A9%20x%2Fy").unwrap(), "café x/y");
        assert!(matches!(key_from_path("/data/"), Err(ApiError::InvalidKey(_))));
        assert!(matches!(key_from_path("/data/%zz"), Err(ApiError::InvalidKey(_))));
        assert!(matches!(key_from_path("/data/%4"), Err(ApiError::InvalidKey(_))));
        assert!(matches!(key_from_path("/data/%+f"), Err(ApiError::InvalidKey(_))));
        assert!(matches!(key_from_path("/data/%-1"), Err(ApiError::InvalidKey(_))));
        assert_eq!(key_from_path("/data/%2f%2F").unwrap(), "//");
        assert!(matches!(
            key_from_path("/data/%ff%fe"),
            Err(ApiError::InvalidKey(_))
        ));
        assert_eq!(
            key_from_path(&format!("/data/{}", "k".repeat(1024)))
                .unwrap()
                .len(),
            1024
        );
        assert!(matches!(
            key_from_path(&format!("/data/{}", "k".repeat(1025))),
            Err(ApiError::KeyTooLong { .. })
        ));
    }
}
