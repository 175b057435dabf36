//! `X-Request-Id`: one id per client request, kept from the balancer to the member that
//! answers, echoed in the response, and named in every log line about the request. A client's
//! own id is kept when it is reasonable (1–128 visible ASCII characters); otherwise the first
//! hop makes one: this process's random prefix and a counter, so ids are unique across
//! processes without coordination and cost a counter increment to make.

use http::{HeaderMap, HeaderName, HeaderValue};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The header, as hyper spells names (lower case).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen id kept; a longer one is replaced.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Makes the ids of one process.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        // A fresh `RandomState` is seeded from the OS's randomness once per process.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        RequestIds {
            prefix: hasher.finish() as u32,
            next: AtomicU64::new(1),
        }
    }
}

impl RequestIds {
    /// A new id, such as `3f9a0c12-1b`.
    pub fn make(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Written by hand: `format!` was most of the cost of a request id, which every
        // request without one of its own pays.
        let mut id = [0u8; 8 + 1 + 16];
        let prefix = hex(u64::from(self.prefix));
        id[..8].copy_from_slice(&prefix[8..]);
        id[8] = b'-';
        let counter = hex(n);
        let digits = (16 - (n.leading_zeros() / 4) as usize).max(1);
        id[9..9 + digits].copy_from_slice(&counter[16 - digits..]);
        HeaderValue::from_bytes(&id[..9 + digits]).expect("hex digits and a dash")
    }

    /// The request's id: the client's if it is acceptable (one `X-Request-Id` of 1–128
    /// visible ASCII characters), else a new one. A hop that passes the request on sets it in
    /// the headers it sends ([`REQUEST_ID`]).
    pub fn of(&self, headers: &HeaderMap) -> HeaderValue {
        let mut sent = headers.get_all(&REQUEST_ID).iter();
        match (sent.next(), sent.next()) {
            (Some(id), None) if is_acceptable(id.as_bytes()) => id.clone(),
            _ => self.make(),
        }
    }
}

/// `n` as 16 lower-case hex digits, zero-padded.
fn hex(n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((n >> ((15 - i) * 4)) & 0xf) as usize];
    }
    out
}

/// 1–128 visible ASCII characters: safe to log and to echo.
pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_BYTES && id.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_id_is_the_prefix_and_the_counter_in_hex() {
        let ids = RequestIds {
            prefix: 0x0a1b_2c3d,
            next: AtomicU64::new(0),
        };
        for expected in ["0a1b2c3d-0", "0a1b2c3d-1", "0a1b2c3d-2"] {
            assert_eq!(ids.make(), expected);
        }
        for n in [0xf, 0x10, 0xdead_beef, u64::MAX] {
            ids.next.store(n, Ordering::Relaxed);
            assert_eq!(ids.make(), format!("0a1b2c3d-{n:x}").as_str());
        }
    }

    #[test]
    fn a_clients_id_is_kept_and_a_missing_or_odd_one_replaced() {
        let ids = RequestIds::default();
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("client-7"));
        assert_eq!(ids.of(&headers), "client-7");

        let made = ids.of(&HeaderMap::new());
        assert!(is_acceptable(made.as_bytes()), "{made:?}");
        assert_ne!(ids.of(&HeaderMap::new()), made, "ids differ");

        for odd in ["", "has space", &"x".repeat(MAX_REQUEST_ID_BYTES + 1)] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_str(odd).unwrap());
            assert_ne!(ids.of(&headers), odd, "{odd:?} is replaced");
        }
        let mut two = HeaderMap::new();
        two.append(REQUEST_ID, HeaderValue::from_static("a"));
        two.append(REQUEST_ID, HeaderValue::from_static("b"));
        let id = ids.of(&two);
        assert!(id != "a" && id != "b", "two ids: neither is the request's");
    }

    #[test]
    fn ids_of_two_processes_differ_in_their_prefix() {
        let (a, b) = (RequestIds::default(), RequestIds::default());
        // Two generators in one process stand for two processes: different random seeds.
        assert_ne!(a.make(), b.make());
    }
}
