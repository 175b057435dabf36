//! Socket addresses as every subcommand takes them: an IP and port (`127.0.0.1:7379`,
//! `[::1]:7379`) or a host name and port (`localhost:7379`, `hakv-0.hakv:7379`). An address
//! to listen on is resolved once, when the value is read ([`resolve_addr`]); an address to
//! call (a cluster's peers) is kept as written and resolved at every new connection
//! ([`peer_addr`]), so a peer whose name moves to another IP (a rescheduled Kubernetes pod, a
//! recreated container) is found again. One rule for `--listen`, `--peers`, `--backend` and
//! the same settings in files.

use std::net::{SocketAddr, ToSocketAddrs};

/// `text` as a socket address, resolving a host name (its first address, preferring IPv4 as
/// the resolver orders them).
pub fn resolve_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!(
            "{text:?} is not an address like 127.0.0.1:7379 or localhost:7379 (the port is missing)"
        ));
    }
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not an address like 127.0.0.1:7379 or localhost:7379: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{text:?}: the host name resolves to no address"))
}

/// `text` as the address of a peer to call, kept as written (a host name in lower case, an
/// IP literal in its canonical form) and not resolved: only its form is checked. Whether the
/// name resolves is a question for each connection (a peer's name may not exist yet while
/// the members of a new cluster start together).
pub fn peer_addr(text: &str) -> Result<String, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr.to_string());
    }
    let bad = |why: &str| format!("{text:?} is not an address like 10.0.0.1:7379 or hakv-0.hakv:7379: {why}");
    let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("the port is missing"))?;
    match port.parse::<u16>() {
        Ok(port) if port > 0 => {}
        _ => return Err(bad("the port is not a number from 1 to 65535")),
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.trim_end_matches('.').split('.').all(label_ok) {
        return Err(bad("the host is neither an IP address nor a DNS name"));
    }
    Ok(format!("{}:{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_address_is_kept_as_written_and_only_its_form_checked() {
        assert_eq!(peer_addr("127.0.0.1:7379").unwrap(), "127.0.0.1:7379");
        assert_eq!(peer_addr(" [::1]:7379 ").unwrap(), "[::1]:7379");
        assert_eq!(
            peer_addr("Hakv-0.hakv-peers:7401").unwrap(),
            "hakv-0.hakv-peers:7401"
        );
        // A name that does not resolve (yet) is taken: it is looked up at each connection.
        assert_eq!(
            peer_addr("no-such-host.invalid:7401").unwrap(),
            "no-such-host.invalid:7401"
        );
        for bad in [
            "localhost",
            "localhost:0",
            "localhost:70000",
            ":7401",
            "bad host:7401",
            "-a:1",
            "a..b:1",
            "http://a:1",
        ] {
            assert!(peer_addr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ips_and_host_names_are_taken_and_the_rest_named_in_the_error() {
        assert_eq!(
            resolve_addr("127.0.0.1:7379").unwrap(),
            "127.0.0.1:7379".parse().unwrap()
        );
        assert_eq!(resolve_addr("[::1]:7379").unwrap(), "[::1]:7379".parse().unwrap());
        let local = resolve_addr("localhost:7390").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 7390, "{local}");
        assert!(resolve_addr("localhost").unwrap_err().contains("port is missing"));
        assert!(resolve_addr("localhost:http-ish").is_err());
    }
}
