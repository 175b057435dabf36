//! Bad input never hurts: each malformed request gets the right 4xx and a JSON error code,
//! never a 500, and what is stored stays intact.

mod support;

use std::io::Write;
use std::time::Duration;
use support::cli::run;
use support::{Http, ServerProcess};

/// method, path, headers, body, expected status, expected error code
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Option<&'a [u8]>,
    u16,
    &'a str,
);

#[test]
fn every_bad_request_gets_its_status_and_code_and_damages_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &["--max-value-bytes", "1KiB"]);
    let mut http = Http::connect(server.addr).unwrap();
    let good = http
        .send_json("PUT", "/data/k", r#"{"value": "precious"}"#, &[])
        .unwrap();
    assert_eq!(good.status, 201);

    let long_key = format!("/data/{}", "k".repeat(1025));
    let big_value = format!("{{\"value\": \"{}\"}}", "v".repeat(2000));
    let huge_body = format!("{{\"value\": 1, \"pad\": \"{}\"}}", "p".repeat(200_000));
    let json = [("Content-Type", "application/json")];
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/data/k",
            json.to_vec(),
            Some(b"{not json"),
            400,
            "invalid_json",
        ),
        ("POST", "/data/k", json.to_vec(), Some(b""), 400, "invalid_json"),
        (
            "POST",
            "/data/k",
            json.to_vec(),
            Some(br#"{"valu": 1}"#),
            400,
            "missing_value",
        ),
        (
            "POST",
            "/data/k",
            json.to_vec(),
            Some(b"[1, 2]"),
            400,
            "missing_value",
        ),
        (
            "POST",
            "/data/k",
            json.to_vec(),
            Some(b"\"text\""),
            400,
            "missing_value",
        ),
        (
            "PUT",
            "/data/k",
            json.to_vec(),
            Some(br#"{"value": 1, "ttl_seconds": -5}"#),
            400,
            "invalid_ttl",
        ),
        (
            "PUT",
            "/data/k",
            json.to_vec(),
            Some(br#"{"value": 1, "ttl_seconds": "soon"}"#),
            400,
            "invalid_ttl",
        ),
        (
            "POST",
            "/data/k",
            vec![],
            Some(br#"{"value": 1}"#),
            415,
            "unsupported_content_type",
        ),
        (
            "POST",
            "/data/k",
            vec![("Content-Type", "text/plain")],
            Some(br#"{"value": 1}"#),
            415,
            "unsupported_content_type",
        ),
        (
            "POST",
            "/data/k",
            json.to_vec(),
            Some(big_value.as_bytes()),
            413,
            "value_too_large",
        ),
        (
            "POST",
            "/data/k",
            json.to_vec(),
            Some(huge_body.as_bytes()),
            413,
            "body_too_large",
        ),
        ("GET", &long_key, vec![], None, 414, "key_too_long"),
        (
            "PUT",
            &long_key,
            json.to_vec(),
            Some(br#"{"value": 1}"#),
            414,
            "key_too_long",
        ),
        ("GET", "/data/%zz", vec![], None, 400, "invalid_key"),
        ("GET", "/data/%C3%28", vec![], None, 400, "invalid_key"),
        (
            "PUT",
            "/data/",
            json.to_vec(),
            Some(br#"{"value": 1}"#),
            400,
            "invalid_key",
        ),
        (
            "PATCH",
            "/data/k",
            json.to_vec(),
            Some(br#"{"value": 1}"#),
            405,
            "method_not_allowed",
        ),
        ("POST", "/health", vec![], None, 405, "method_not_allowed"),
        ("GET", "/nowhere", vec![], None, 404, "route_not_found"),
        (
            "PUT",
            "/data/k",
            vec![("Content-Type", "application/json"), ("If-Match", "banana")],
            Some(br#"{"value": 1}"#),
            400,
            "invalid_precondition",
        ),
        (
            "PUT",
            "/data/k",
            vec![("Content-Type", "application/json"), ("If-None-Match", "\"3\"")],
            Some(br#"{"value": 1}"#),
            400,
            "invalid_precondition",
        ),
        (
            "DELETE",
            "/data/k",
            vec![("If-None-Match", "*")],
            None,
            400,
            "invalid_precondition",
        ),
        (
            "GET",
            "/data/k?consistency=eventual",
            vec![],
            None,
            400,
            "invalid_query",
        ),
        ("GET", "/data?limit=0", vec![], None, 400, "invalid_query"),
        ("GET", "/data?limit=100000", vec![], None, 400, "invalid_query"),
        ("GET", "/data?cursor=xyz", vec![], None, 400, "invalid_query"),
        ("GET", "/data?colour=blue", vec![], None, 400, "invalid_query"),
    ];
    for (method, path, headers, body, status, code) in cases {
        // A fresh connection each: after an oversized body the node may close the connection
        // rather than read the rest of it.
        let mut http = Http::connect(server.addr).unwrap();
        let reply = http.request(method, path, &headers, body).unwrap();
        let shown = &path[..path.len().min(40)];
        assert_eq!(reply.status, status, "{method} {shown}: {}", reply.text());
        assert_eq!(reply.code(), code, "{method} {shown}");
        assert!(
            reply.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {shown}: a message for people"
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }

    // Malformed HTTP is refused by the protocol layer, with a JSON body like every other
    // error, and the node keeps serving.
    let mut broken = Http::connect(server.addr).unwrap();
    let reply = broken.raw(b"GARBAGE\r\n\r\n").unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "malformed_request");
    assert_eq!(reply.header("content-type"), Some("application/json"));

    let after = http.get("/data/k").unwrap();
    assert_eq!(
        after.body, b"{\"data\":\"precious\"}\n",
        "nothing stored was damaged"
    );
    assert_eq!(after.revision(), good.revision());
}

#[test]
fn excess_requests_are_shed_with_503_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &["--max-in-flight", "1"]);
    // Hold the only slot: a write whose body has not fully arrived yet.
    let mut holder = Http::connect(server.addr).unwrap();
    let head = "PUT /data/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"val";
    holder.stream().write_all(head.as_bytes()).unwrap();

    let mut other = Http::connect(server.addr).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Wait until the holder's request is admitted (once the node has read its headers):
    // `/metrics` is never counted itself, and a request sent before the holder's got in
    // could have had the holder shed instead.
    while !other
        .get("/metrics")
        .unwrap()
        .text()
        .contains("hakv_http_requests_in_flight 1\n")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the holder was never admitted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let shed = loop {
        let reply = other.get("/data/anything").unwrap();
        if reply.status == 503 {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request was shed: {}",
            reply.status
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(shed.code(), "overloaded");
    assert_eq!(shed.header("retry-after"), Some("1"));
    // Operational endpoints still answer when the node is saturated.
    assert_eq!(other.get("/health").unwrap().status, 200);

    holder.stream().write_all(b"ue\": 1}").unwrap();
    let finished = holder.read_reply(false).unwrap();
    assert_eq!(finished.status, 201);
    assert_eq!(
        other.get("/data/slow").unwrap().status,
        200,
        "the slot is free again"
    );
}

/// A client that stops sending its body half-way is answered 408 at the request timeout: the
/// request never arrived in full, so nothing was done (not 504, which says a write's outcome
/// is unknown).
#[test]
fn a_stalled_request_times_out_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &["--request-timeout", "300ms"]);
    let mut stalled = Http::connect(server.addr).unwrap();
    let head = "PUT /data/stall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{";
    stalled.stream().write_all(head.as_bytes()).unwrap();
    let reply = stalled.read_reply(false).unwrap();
    assert_eq!(reply.status, 408);
    assert_eq!(reply.code(), "request_timeout");
    let mut http = Http::connect(server.addr).unwrap();
    assert_eq!(
        http.get("/data/stall").unwrap().status,
        404,
        "the unfinished write was not applied"
    );
}

/// A body whose declared length is over the limit is refused from the request head, before a
/// byte of it is read: the client is not left waiting for the request timeout.
#[test]
fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &["--request-timeout", "10min"]);
    for method in ["PUT", "POST"] {
        let mut http = Http::connect(server.addr).unwrap();
        let head = format!(
            "{method} /data/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        );
        http.stream().write_all(head.as_bytes()).unwrap();
        let reply = http.read_reply(false).unwrap();
        assert_eq!(reply.status, 413, "{method}");
        assert_eq!(reply.code(), "body_too_large", "{method}");
    }
    let mut http = Http::connect(server.addr).unwrap();
    assert_eq!(http.get("/data/big").unwrap().status, 404, "nothing was written");
}

#[test]
fn oversized_request_heads_are_refused_with_431_and_a_json_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &[]);
    let many: String = (0..200).map(|i| format!("X-Filler-{i}: x\r\n")).collect();
    let huge = format!("X-Filler: {}\r\n", "x".repeat(100 << 10));
    for extra in [many, huge] {
        let mut http = Http::connect(server.addr).unwrap();
        let head = format!("GET /data/k HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        let reply = http.raw(head.as_bytes()).unwrap();
        assert_eq!(reply.status, 431, "{} header bytes", extra.len());
        assert_eq!(reply.code(), "headers_too_large");
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    // A 100 kB URL does not fit in the 64 KiB a request head may take: the head is too large.
    let mut http = Http::connect(server.addr).unwrap();
    let long_url = format!("GET /data/{} HTTP/1.1\r\nHost: x\r\n\r\n", "k".repeat(100_000));
    let reply = http.raw(long_url.as_bytes()).unwrap();
    assert_eq!(reply.status, 431, "a 100 kB URL");
    assert_eq!(reply.code(), "headers_too_large");
    let mut http = Http::connect(server.addr).unwrap();
    assert_eq!(http.get("/data/k").unwrap().status, 404, "the node still serves");
}

#[test]
fn bad_configuration_is_refused_at_start_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["--cache-policy", "random"], "unknown cache policy"),
        (vec!["--cache-bytes", "lots"], "not a size"),
        (vec!["--max-in-flight", "0"], "max_in_flight"),
        (vec!["--listen", "nowhere"], "is not an address"),
    ] {
        let data_dir = dir.path().to_str().unwrap();
        let out = run(&[&["serve", "--data-dir", data_dir][..], &args].concat());
        assert!(out.code != 0, "{args:?} was accepted");
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "cache_bytez = 5\n").unwrap();
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("cache_bytez"), "{}", out.stderr);
}

/// Slowloris: 300 connections that trickle a request head a header at a time never get a
/// request in. The node closes each once its head has taken longer than the header read
/// timeout (10 s, from the first byte, not from the last), and serves others meanwhile.
#[test]
fn connections_that_trickle_their_headers_are_closed_and_others_are_served() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &[]);
    let mut slow: Vec<Option<std::net::TcpStream>> = (0..300)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
            stream.write_all(b"GET /data/k HTTP/1.1\r\nHost: x\r\n").unwrap();
            stream.set_nonblocking(true).unwrap();
            Some(stream)
        })
        .collect();
    let mut client = Http::connect(server.addr).unwrap();
    let started = std::time::Instant::now();
    let mut served = 0;
    while slow.iter().any(Option::is_some) {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{} trickling connections still open after 40 s",
            slow.iter().flatten().count()
        );
        // One more header line on each open connection; a closed one reads EOF (or fails).
        for entry in slow.iter_mut() {
            let Some(stream) = entry else { continue };
            let _ = stream.write_all(b"X-Slow: 1\r\n");
            let mut buf = [0u8; 512];
            match stream.read(&mut buf) {
                Ok(0) => *entry = None,
                Ok(_) => {
                    // The node may answer 408 before it closes: a request never got in.
                    assert!(!buf.starts_with(b"HTTP/1.1 2"), "a trickled request was served");
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => *entry = None,
            }
        }
        let reply = client
            .send_json("PUT", "/data/meanwhile", r#"{"value": 1}"#, &[])
            .unwrap();
        assert!(reply.status == 200 || reply.status == 201, "{}", reply.status);
        served += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed before the header read timeout"
    );
    assert!(served > 10, "the node served others meanwhile: {served}");
}
