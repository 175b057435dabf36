//! The one key codec of hakv: how a key travels in a URL path (`/data/{key}`), encoded by the
//! client and decoded by the server and the balancer alike, and how values travel in query
//! strings. Keys may contain `/`: it is kept, and every other byte outside RFC 3986's
//! unreserved set is percent-encoded as UTF-8.

use crate::MAX_KEY_BYTES;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Bytes escaped in a path segment: all but `A-Z a-z 0-9 - . _ ~`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a path does not name a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("a % escape is cut short")]
    CutEscape,
    #[error("a % escape is not two hex digits")]
    BadEscape,
    #[error("the key is not valid UTF-8 after percent-decoding")]
    NotUtf8,
    #[error("the key is longer than {MAX_KEY_BYTES} bytes")]
    TooLong,
}

/// The path of `key`, `/data/{key}`, with each `/`-separated segment encoded.
pub fn data_path(key: &str) -> String {
    let mut path = String::with_capacity(6 + key.len());
    path.push_str("/data/");
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        // "." and ".." are dot-segments that URL normalizers (proxies, some clients) remove;
        // encoded they are just key text.
        match segment {
            "." => path.push_str("%2E"),
            ".." => path.push_str("%2E%2E"),
            _ => {
                let _ = write!(path, "{}", utf8_percent_encode(segment, SEGMENT));
            }
        }
    }
    path
}

/// A value for a query string parameter (`/` encoded too).
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The key that `raw` (the path after `/data/`) names: percent-decoded (each escape exactly
/// two hex digits), valid UTF-8, 1 to [`MAX_KEY_BYTES`] bytes. Borrowed unless it has an
/// escape.
pub fn decode_key(raw: &str) -> Result<Cow<'_, str>, KeyError> {
    if raw.is_empty() {
        return Err(KeyError::Empty);
    }
    let key = if raw.contains('%') {
        Cow::Owned(percent_decode(raw)?)
    } else {
        Cow::Borrowed(raw)
    };
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong);
    }
    Ok(key)
}

fn percent_decode(raw: &str) -> Result<String, KeyError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(KeyError::CutEscape)?;
            // Exactly two hex digits: `from_str_radix` alone would also take `%+f`.
            let (Some(high), Some(low)) = (hex_value(hex[0]), hex_value(hex[1])) else {
                return Err(KeyError::BadEscape);
            };
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| KeyError::NotUtf8)
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_slashes_and_encodes_the_rest() {
        assert_eq!(data_path("plain-key_1.x~"), "/data/plain-key_1.x~");
        assert_eq!(data_path("a/b/c"), "/data/a/b/c");
        assert_eq!(data_path("with space"), "/data/with%20space");
        assert_eq!(data_path("q?x=1#f%"), "/data/q%3Fx%3D1%23f%25");
        assert_eq!(data_path("ключ"), "/data/%D0%BA%D0%BB%D1%8E%D1%87");
        assert_eq!(data_path("a/../b/./c"), "/data/a/%2E%2E/b/%2E/c");
        assert_eq!(data_path("a//b/"), "/data/a//b/");
        assert_eq!(query_value("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn keys_are_decoded_and_checked() {
        assert_eq!(decode_key("plain").unwrap(), "plain");
        assert_eq!(decode_key("a/b/c").unwrap(), "a/b/c");
        assert_eq!(decode_key("caf%C3%A9%20x%2Fy").unwrap(), "café x/y");
        assert_eq!(decode_key(""), Err(KeyError::Empty));
        assert_eq!(decode_key("%zz"), Err(KeyError::BadEscape));
        assert_eq!(decode_key("%4"), Err(KeyError::CutEscape));
        assert_eq!(decode_key("%+f"), Err(KeyError::BadEscape));
        assert_eq!(decode_key("%-1"), Err(KeyError::BadEscape));
        assert_eq!(decode_key("%2f%2F").unwrap(), "//");
        assert_eq!(decode_key("%ff%fe"), Err(KeyError::NotUtf8));
        assert_eq!(decode_key(&"k".repeat(1024)).unwrap().len(), 1024);
        assert_eq!(decode_key(&"k".repeat(1025)), Err(KeyError::TooLong));
    }

    proptest! {
        /// Whatever the key, what the client encodes the server decodes back to it, and the
        /// encoded form holds only unreserved characters, `/` and escapes.
        #[test]
        fn every_key_round_trips(key in "\\PC{1,200}") {
            let path = data_path(&key);
            let raw = path.strip_prefix("/data/").unwrap();
            prop_assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)));
            prop_assert_eq!(decode_key(raw).unwrap(), key.as_str());
        }

        /// Any text after `/data/` is a key or a named error, never a panic.
        #[test]
        fn any_path_decodes_or_is_refused(raw in "(%[0-9a-fA-F+-]{0,2}|\\PC|/){0,64}") {
            if let Ok(key) = decode_key(&raw) {
                prop_assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES);
            }
        }

        /// Arbitrary bytes as a path (as a proxy might pass them): no panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = decode_key(&text);
        }
    }
}
