//! The internal routes members call on each other cannot be used to hold a member's memory or
//! slots: a request without the cluster token is refused before any of its body is read, and
//! one with the token whose body stalls is cut off at its deadline, while clients are served.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::cluster::TOKEN;
use support::{Cluster, Http};

/// Resident memory of `pid`, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

/// Opens a connection and sends the head of a 4 MiB forwarded batch (within the route's body
/// limit) and its first 64 KiB, then stalls.
fn stalled_propose(addr: std::net::SocketAddr, token: Option<&str>) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /internal/propose HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\n\r\n",
        4 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(&vec![0u8; 64 << 10]);
    stream
}

/// The status line's code of whatever the member answered on `stream`.
fn status_of(stream: &mut TcpStream) -> u16 {
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("an answer");
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[test]
fn stalled_and_unauthenticated_internal_requests_hold_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 1, &["--request-timeout", "2s"]);
    let addr = cluster.member(1).addr;
    let pid = cluster.pid(1);
    let before = rss_kib(pid);

    // A thousand connections without the token, each in the middle of a 4 MiB body.
    let mut unauthenticated: Vec<TcpStream> = (0..1000).map(|_| stalled_propose(addr, None)).collect();
    let mut http = Http::connect(addr).unwrap();
    let put = http.send_json("PUT", "/data/k", r#"{"value": 1}"#, &[]).unwrap();
    assert_eq!(put.status, 201, "clients are served meanwhile");
    for stream in &mut unauthenticated {
        assert_eq!(status_of(stream), 401);
    }
    let after = rss_kib(pid);
    eprintln!("RSS {before} KiB before, {after} KiB with 1000 refused 4 MiB bodies in flight");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );

    // With the token, a body that stalls is cut off at the deadline (request timeout + 1 s).
    let started = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..20).map(|_| stalled_propose(addr, Some(TOKEN))).collect();
    for stream in &mut stalled {
        assert_eq!(status_of(stream), 408);
    }
    eprintln!("stalled bodies cut off after {:?}", started.elapsed());
    assert_eq!(
        http.send_json("PUT", "/data/k", r#"{"value": 2}"#, &[])
            .unwrap()
            .status,
        200
    );
}
