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
        HeaderValue::try_from(format!("{:08x}-{n:x}", self.prefix)).expect("hex digits and a dash")
    }

    /// The request's id: the client's if it is acceptable, else a new one, which is then set
    /// in `headers` so that the next hop sees the same id.
    pub fn of(&self, headers: &mut HeaderMap) -> HeaderValue {
        let mut sent = headers.get_all(&REQUEST_ID).iter();
        if let (Some(id), None) = (sent.next(), sent.next())
            && is_acceptable(id.as_bytes())
        {
            return id.clone();
        }
        let id = self.make();
        headers.insert(REQUEST_ID, id.clone());
        id
    }
}

/// 1–128 visible ASCII characters: safe to log and to echo.
pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_BYTES && id.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_id_is_kept_and_a_missing_or_odd_one_replaced() {
        let ids = RequestIds::default();
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("client-7"));
        assert_eq!(ids.of(&mut headers), "client-7");

        let mut headers = HeaderMap::new();
        let made = ids.of(&mut headers);
        assert_eq!(headers[REQUEST_ID], made, "the next hop sees the id made here");
        assert_ne!(ids.make(), made, "ids differ");

        for odd in ["", "has space", &"x".repeat(MAX_REQUEST_ID_BYTES + 1)] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_str(odd).unwrap());
            assert_ne!(ids.of(&mut headers), odd, "{odd:?} is replaced");
        }
        let mut two = HeaderMap::new();
        two.append(REQUEST_ID, HeaderValue::from_static("a"));
        two.append(REQUEST_ID, HeaderValue::from_static("b"));
        let id = ids.of(&mut two);
        assert!(id != "a" && id != "b", "two ids: neither is the request's");
        assert_eq!(two.get_all(REQUEST_ID).iter().count(), 1);
    }

    #[test]
    fn ids_of_two_processes_differ_in_their_prefix() {
        let (a, b) = (RequestIds::default(), RequestIds::default());
        // Two generators in one process stand for two processes: different random seeds.
        assert_ne!(a.make(), b.make());
    }
}
