//! Socket addresses as every subcommand takes them: an IP and port (`127.0.0.1:7379`,
//! `[::1]:7379`) or a host name and port (`localhost:7379`, `hakv-0.hakv:7379`), resolved
//! once, when the value is read. One rule for `--listen`, `--peers`, `--backend` and the
//! same settings in files.

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

#[cfg(test)]
mod tests {
    use super::*;

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
