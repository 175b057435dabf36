//! Comparing presented secrets (cluster and admin tokens) without leaking where they differ.

/// True when `presented` equals `expected`, in time that does not depend on where the first
/// difference is, so a token cannot be guessed byte by byte from response times. (The length
/// is not secret: it compares unequal at once.)
pub fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// True when an `Authorization` header value is `Bearer <token>` for exactly `token`.
pub fn bearer_matches(header: Option<&[u8]>, token: &str) -> bool {
    header
        .and_then(|h| h.strip_prefix(b"Bearer "))
        .is_some_and(|presented| same_secret(presented, token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        for wrong in [&b"s3cres"[..], b"s3cret ", b"s3cre", b""] {
            assert!(!same_secret(wrong, b"s3cret"), "{wrong:?}");
        }
        assert!(bearer_matches(Some(b"Bearer s3cret"), "s3cret"));
        for wrong in [&b"bearer s3cret"[..], b"Bearer s3cret ", b"s3cret", b"Bearer "] {
            assert!(!bearer_matches(Some(wrong), "s3cret"), "{wrong:?}");
        }
        assert!(!bearer_matches(None, "s3cret"));
    }
}
