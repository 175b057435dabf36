//! Keys and query values as they appear in URLs: `/` kept (keys may be paths), everything
//! outside RFC 3986's unreserved set percent-encoded as UTF-8.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::fmt::Write as _;

/// Bytes escaped in a path segment: all but `A-Z a-z 0-9 - . _ ~`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

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

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::percent_decode_str;

    #[test]
    fn keeps_slashes_and_encodes_the_rest() {
        assert_eq!(data_path("plain-key_1.x~"), "/data/plain-key_1.x~");
        assert_eq!(data_path("a/b/c"), "/data/a/b/c");
        assert_eq!(data_path("with space"), "/data/with%20space");
        assert_eq!(data_path("q?x=1#f%"), "/data/q%3Fx%3D1%23f%25");
        assert_eq!(data_path("ключ"), "/data/%D0%BA%D0%BB%D1%8E%D1%87");
        assert_eq!(data_path("a/../b/./c"), "/data/a/%2E%2E/b/%2E/c");
        assert_eq!(data_path("a//b/"), "/data/a//b/");
    }

    #[test]
    fn encoding_round_trips_through_percent_decoding() {
        for key in ["a/b c/d", "ü/ß/😀", "100%", "..", "+&=;,"] {
            let path = data_path(key);
            let encoded = path.strip_prefix("/data/").unwrap();
            // Only unreserved characters, '/' and escapes survive unencoded.
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b))
            );
            assert_eq!(percent_decode_str(encoded).decode_utf8().unwrap(), key);
        }
    }

    #[test]
    fn query_values_encode_slashes() {
        assert_eq!(query_value("a/b c"), "a%2Fb%20c");
    }
}
