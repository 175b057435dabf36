//! Header rewriting for a proxy hop: hop-by-hop headers (RFC 9110 §7.6.1) are removed in both
//! directions, and the client's address is added as `X-Forwarded-For` and `Forwarded`.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;

/// Connection-specific headers that must not be forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including any that `Connection` names. `Transfer-Encoding` goes
/// too: hyper frames the forwarded body itself.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        // Every `Connection` header counts (a request may carry several). Rare (clients
        // seldom list extra headers), so allocating here is fine.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|conn| conn.to_str().unwrap_or("").split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// The client's address, rendered once per connection so requests only clone it.
#[derive(Debug, Clone)]
pub struct ClientAddr {
    xff: HeaderValue,
    forwarded: HeaderValue,
}

impl ClientAddr {
    pub fn new(peer: SocketAddr) -> Self {
        let ip = peer.ip();
        // RFC 7239 wants IPv6 addresses quoted and bracketed.
        let forwarded = if ip.is_ipv6() {
            format!("for=\"[{ip}]\";proto=http")
        } else {
            format!("for={ip};proto=http")
        };
        Self {
            xff: HeaderValue::from_str(&ip.to_string()).expect("an IP is a valid header value"),
            forwarded: HeaderValue::from_str(&forwarded).expect("valid header value"),
        }
    }
}

static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Appends this hop to `X-Forwarded-For` and `Forwarded` (comma lists, as both specs say).
pub fn add_forwarded(headers: &mut HeaderMap, client: &ClientAddr) {
    append_list(headers, &X_FORWARDED_FOR, &client.xff);
    append_list(headers, &FORWARDED, &client.forwarded);
}

fn append_list(headers: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    match headers.get_mut(name) {
        None => {
            headers.insert(name.clone(), value.clone());
        }
        Some(existing) => {
            let mut joined = Vec::with_capacity(existing.len() + 2 + value.len());
            joined.extend_from_slice(existing.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(value.as_bytes());
            if let Ok(v) = HeaderValue::from_bytes(&joined) {
                *existing = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `tests/properties.rs`: only the first `Connection` header was read, so a
    /// header named by a second one was forwarded.
    #[test]
    fn every_connection_header_counts() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONNECTION, HeaderValue::from_static("x-a"));
        headers.append(header::CONNECTION, HeaderValue::from_static("x-b"));
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert("x-b", HeaderValue::from_static("2"));
        headers.insert("x-c", HeaderValue::from_static("3"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-c"));
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::HOST, HeaderValue::from_static("kv"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::HOST));
    }

    #[test]
    fn forwarded_headers_are_added_or_extended() {
        let client = ClientAddr::new("10.0.0.7:5000".parse().unwrap());
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, &client);
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
        assert_eq!(h["forwarded"], "for=10.0.0.7;proto=http");
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        add_forwarded(&mut h, &client);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.7");
        let v6 = ClientAddr::new("[::1]:80".parse().unwrap());
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, &v6);
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http");
    }
}
