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

/// The token of an `Authorization` header value `Bearer <token>`; the scheme's name is
/// case-insensitive (RFC 9110, 11.1).
pub fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = header.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// True when an `Authorization` header value is `Bearer <token>` for exactly `token`.
pub fn bearer_matches(header: Option<&[u8]>, token: &str) -> bool {
    header
        .and_then(bearer_token)
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
        assert!(
            bearer_matches(Some(b"bEARER s3cret"), "s3cret"),
            "the scheme is case-insensitive"
        );
        for wrong in [
            &b"Basic s3cret"[..],
            b"Bearer s3cret ",
            b"s3cret",
            b"Bearer ",
            b"Bearers3cret",
        ] {
            assert!(!bearer_matches(Some(wrong), "s3cret"), "{wrong:?}");
        }
        assert!(!bearer_matches(None, "s3cret"));
    }
}
