//! Failover, retries and their budget, timeouts and the error answers, through the real proxy.

mod common;

use common::*;
use hakv_balancer::{Algorithm, BalancerConfig, BalancerHandle};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;

/// A port with nothing listening (bound, then closed): connecting is refused.
async fn dead_port() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn a_slow_backend_gets_less_under_least_connections_and_p2c_than_round_robin() {
    let mut share = Vec::new();
    for algorithm in [Algorithm::RoundRobin, Algorithm::LeastConnections, Algorithm::P2c] {
        let (a, b, slow) = (
            TestBackend::start("a").await,
            TestBackend::start("b").await,
            TestBackend::start("slow").await,
        );
        slow.set_delay(Duration::from_millis(20));
        let mut c = config(&[&a, &b, &slow]);
        c.algorithm = algorithm;
        let lb = start(c).await;
        // 8 concurrent clients, 60 requests each: bounded in count.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let url = format!("http://{}/data/k", lb.addr);
            tasks.push(tokio::spawn(async move {
                let cl = client();
                for _ in 0..60 {
                    assert_eq!(get(&cl, &url).await.0, 200);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let total = a.hits() + b.hits() + slow.hits();
        assert_eq!(total, 480);
        share.push(slow.hits() as f64 / total as f64);
        lb.shutdown().await.unwrap();
    }
    let (rr, lc, p2c) = (share[0], share[1], share[2]);
    assert!(
        (rr - 1.0 / 3.0).abs() < 0.01,
        "round robin gave the slow backend {rr}"
    );
    assert!(lc < rr, "least-connections {lc} vs round-robin {rr}");
    assert!(p2c < rr, "p2c {p2c} vs round-robin {rr}");
}

#[tokio::test]
async fn the_retry_budget_caps_attempts_when_every_backend_fails() {
    let bs = [
        TestBackend::start("a").await,
        TestBackend::start("b").await,
        TestBackend::start("c").await,
    ];
    for b in &bs {
        b.set_status(503);
    }
    let mut c = config(&[&bs[0], &bs[1], &bs[2]]);
    c.retry.budget_ratio = 0.2;
    c.retry.max_attempts = 3;
    c.retry.backoff_base_ms = 0;
    c.retry.budget_initial_tokens = 0;
    c.outlier.consecutive_failures = 0; // keep every backend eligible: the worst case for retries
    let lb = start(c).await;
    let cl = client();
    let requests = 300u64;
    for _ in 0..requests {
        let (status, _) = get(&cl, &format!("http://{}/data/k", lb.addr)).await;
        assert_eq!(status, 503, "the backends' own 503 is passed on");
    }
    let attempts: u64 = bs.iter().map(|b| b.hits()).sum();
    // Without a budget every request would make 3 attempts (900).
    assert!(
        attempts <= requests * 12 / 10,
        "{attempts} attempts for {requests} requests"
    );
    assert!(
        attempts > requests,
        "retries happened while the budget lasted: {attempts}"
    );
    let status = lb.balancer.status();
    assert!(status["retry_budget_exhausted"].as_u64().unwrap() > 0);
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idempotent_request_fails_over_from_a_dead_backend() {
    let live = TestBackend::start("live").await;
    let dead = dead_port().await;
    let mut c = config(&[&live]);
    c.backends.insert(0, dead.to_string().parse().unwrap());
    c.algorithm = Algorithm::RoundRobin;
    let lb = start(c).await;
    let cl = client();
    for method in ["GET", "PUT", "DELETE", "POST"] {
        // Round robin sends every other request to the dead backend first; the refused
        // connection is retried on the live one, even for POST (it surely never arrived).
        for _ in 0..2 {
            let (status, backend, body, _) = send(
                &cl,
                method,
                &format!("http://{}/data/k", lb.addr),
                "{\"value\":1}",
            )
            .await
            .unwrap();
            assert_eq!((status, backend.as_str()), (200, "live"), "{method}");
            assert_eq!(body, "{\"value\":1}", "the body was forwarded on the retry");
        }
    }
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_post_that_got_503_is_not_retried_but_a_get_is() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    a.set_status(503);
    let mut c = config(&[&a, &b]);
    c.algorithm = Algorithm::RoundRobin;
    c.retry.budget_max_tokens = 10;
    c.outlier.consecutive_failures = 0; // keep `a` in rotation despite its 503s
    let lb = start(c).await;
    let cl = client();
    let url = format!("http://{}/data/k", lb.addr);
    // Earn budget tokens first: 10 GETs on the healthy path.
    for _ in 0..10 {
        let _ = get(&cl, &url).await;
    }
    let mut saw_post_503 = false;
    for _ in 0..4 {
        let (a0, b0) = (a.hits(), b.hits());
        let (status, backend, _, _) = send(&cl, "POST", &url, "{\"value\":1}").await.unwrap();
        if backend == "a" {
            assert_eq!(status, 503);
            assert_eq!((a.hits() - a0, b.hits() - b0), (1, 0), "the POST was not retried");
            saw_post_503 = true;
            break;
        }
    }
    assert!(saw_post_503, "round robin sent a POST to a");
    for _ in 0..2 {
        let (status, backend) = get(&cl, &url).await;
        assert_eq!((status, backend.as_str()), (200, "b"));
    }
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_backend_and_timeouts_answer_json_errors_that_say_why() {
    let dead = dead_port().await;
    let slow = TestBackend::start("slow").await;
    slow.set_delay(Duration::from_secs(5));
    let mut c = config(&[&slow]);
    c.backends.push(dead.to_string().parse().unwrap());
    c.retry.budget_initial_tokens = 0;
    c.timeouts.attempt_ms = 100;
    c.timeouts.total_ms = 300;
    c.algorithm = Algorithm::RoundRobin;
    let lb = start(c).await;
    let cl = client();
    let url = format!("http://{}/data/k", lb.addr);
    let (status, _, body, _) = send(&cl, "GET", &url, "").await.unwrap();
    assert_eq!(status, 504, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "backend_timeout");
    // The next one goes to the dead backend first; with no budget it cannot retry.
    let (status, _, body, _) = send(&cl, "GET", &url, "").await.unwrap();
    assert_eq!(status, 502, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "backend_unreachable");
    assert!(v["error"].as_str().unwrap().contains("refused"), "{v}");
    // Drain both: nothing can take the request.
    for addr in [slow.addr.to_string(), dead.to_string()] {
        lb.balancer.status();
        let (s, _, _, _) = send(
            &cl,
            "POST",
            &format!("http://{}/lb/backends/{addr}/drain", lb.admin_addr),
            "",
        )
        .await
        .unwrap();
        assert_eq!(s, 200);
    }
    let (status, _, body, headers) = send(&cl, "GET", &url, "").await.unwrap();
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    assert!(body.contains("\"no_backend\""), "{body}");
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_with_retry_after() {
    let a = TestBackend::start("a").await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    a.set_gate(Some(gate.clone()));
    let mut c = config(&[&a]);
    c.limits.max_in_flight = 2;
    let lb = start(c).await;
    let url = format!("http://{}/data/k", lb.addr);
    let held: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&client(), &url).await.0 })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || a
            .in_progress
            .load(std::sync::atomic::Ordering::SeqCst)
            == 2)
        .await
    );
    let (status, _, body, headers) = send(&client(), "GET", &url, "").await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert!(body.contains("\"overloaded\""), "{body}");
    gate.add_permits(2);
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dead_backend_is_marked_down_by_health_checks_and_ejected_by_failures() {
    let live = TestBackend::start("live").await;
    let dead = dead_port().await;
    let mut c = config(&[&live]);
    c.backends.push(dead.to_string().parse().unwrap());
    c.outlier.consecutive_failures = 2;
    c.health.interval_ms = 60_000; // only the first probe round runs during the test
    c.health.fall = 3;
    let lb = start(c).await;
    let cl = client();
    let url = format!("http://{}/data/k", lb.addr);
    for _ in 0..20 {
        let _ = get(&cl, &url).await;
    }
    let s = lb.balancer.status();
    let dead_status = &s["backends"][1];
    assert_eq!(dead_status["ejected"], true, "{s}");
    assert_eq!(dead_status["ejections"], 1, "{s}");
    lb.shutdown().await.unwrap();
}

/// Every backend failing its health checks at once (each member of a hakv cluster says "not
/// ready" while it elects a leader) must not turn the balancer into a wall of 503s: in panic
/// mode requests go to every backend that is neither ejected nor draining.
#[tokio::test]
async fn when_every_backend_fails_its_health_checks_requests_still_go_through() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let mut c = config(&[&a, &b]);
    // Generous probe timeouts and two failures to fall: a slow probe on a busy machine must
    // not mark `a` down again during the last phase.
    c.health.interval_ms = 100;
    c.health.timeout_ms = 100;
    c.health.fall = 2;
    c.health.rise = 1;
    c.algorithm = Algorithm::RoundRobin;
    let lb = start(c).await;
    let cl = client();
    let url = format!("http://{}/data/k", lb.addr);
    a.set_ready(false);
    b.set_ready(false);
    let all_down = || {
        let s = lb.balancer.status();
        s["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["healthy"] == false)
    };
    assert!(eventually(Duration::from_secs(5), all_down).await);
    assert_eq!(lb.balancer.status()["panic"], true);
    let mut answered_by = Vec::new();
    for _ in 0..4 {
        let (status, backend) = get(&cl, &url).await;
        assert_eq!(status, 200, "{backend}");
        answered_by.push(backend);
    }
    answered_by.sort();
    assert_eq!(
        answered_by,
        ["a", "a", "b", "b"],
        "both unhealthy backends take requests"
    );
    assert_eq!(lb.balancer.status()["panic_requests"], 4);
    // Draining still counts in panic mode.
    let drain = format!("http://{}/lb/backends/{}/drain", lb.admin_addr, a.addr);
    assert_eq!(send(&cl, "POST", &drain, "").await.unwrap().0, 200);
    for _ in 0..3 {
        assert_eq!(get(&cl, &url).await, (200, "b".to_owned()));
    }
    // One healthy backend ends panic mode: only it gets requests.
    a.set_ready(true);
    let backend_a = format!("http://{}/lb/backends/{}", lb.admin_addr, a.addr);
    let (status, _, body, _) = send(&cl, "PATCH", &backend_a, r#"{"draining": false}"#)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(eventually(Duration::from_secs(5), || lb.balancer.status()["panic"] == false).await);
    for _ in 0..3 {
        assert_eq!(get(&cl, &url).await, (200, "a".to_owned()));
    }
    lb.shutdown().await.unwrap();
}

/// A raw HTTP backend for the body-timeout tests: `GET /data/*` gets a head announcing
/// `announced` bytes, then `sent` of them at once, then nothing while the connection stays open;
/// anything else (the health probes) gets a short 200.
async fn big_body_backend(
    announced: usize,
    sent: usize,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let n = conn.read(&mut request).await.unwrap_or(0);
                if request[..n].starts_with(b"GET /data/") {
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {announced}\r\n\r\n");
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(&vec![b'x'; sent]).await;
                    let _ = conn.read(&mut request).await; // held open until the peer closes
                } else {
                    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = conn.write_all(ok.as_bytes()).await;
                }
            });
        }
    });
    (addr, server)
}

/// A balancer in front of `backend` alone, with `timeouts.body_idle_ms = idle_ms`, and the
/// answer to `GET /data/big` through it.
async fn get_big_through(
    backend: std::net::SocketAddr,
    idle_ms: u64,
) -> (BalancerHandle, http::Response<hyper::body::Incoming>) {
    let mut c = BalancerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        backends: vec![backend.to_string().parse().unwrap()],
        ..BalancerConfig::default()
    };
    c.timeouts.body_idle_ms = idle_ms;
    let lb = start(c).await;
    let response = client()
        .get(format!("http://{}/data/big", lb.addr).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    (lb, response)
}

/// A backend that sends its head and part of a large body, then nothing: the client must not
/// hang on it forever (nor hold the balancer's slots).
#[tokio::test]
async fn a_streamed_body_that_stalls_is_cut_off_after_the_idle_timeout() {
    // Far above the size the balancer reads whole, so it streams.
    let (backend, server) = big_body_backend(1_000_000, 64 * 1024).await;
    let (lb, response) = get_big_through(backend, 300).await;
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the body ended instead of hanging");
    assert!(body.is_err(), "a cut-off body must not look complete");
    assert!(
        eventually(Duration::from_secs(5), || lb.balancer.status()["in_flight"] == 0).await,
        "the slot is released: {}",
        lb.balancer.status()
    );
    lb.shutdown().await.unwrap();
    server.abort();
}

/// The idle timeout measures the backend's silence, not the client's: a client that reads a
/// large body slowly (longer pauses than `body_idle_ms`) still gets all of it.
#[tokio::test]
async fn a_slow_reader_gets_the_whole_body_despite_the_idle_timeout() {
    const BODY: usize = 4 << 20;
    let (backend, server) = big_body_backend(BODY, BODY).await;
    let (lb, response) = get_big_through(backend, 300).await;
    let mut body = response.into_body();
    let (mut received, mut pauses) = (0, 0);
    while let Some(frame) = body.frame().await {
        received += frame
            .expect("the body was cut off")
            .into_data()
            .map_or(0, |d| d.len());
        // Twice (after the first frame and halfway), stop reading for longer than the idle
        // timeout, with the proxy's buffers toward us full.
        if pauses < 2 && received >= pauses * BODY / 2 {
            pauses += 1;
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
    }
    assert_eq!(pauses, 2);
    assert_eq!(received, BODY);
    lb.shutdown().await.unwrap();
    server.abort();
}

/// A backend that crashes mid-request: it answers health checks, but closes the connection
/// after reading any other request (as a process killed after it got the request would).
/// Counts the requests it took.
async fn crashing_backend() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = taken.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let head = String::from_utf8_lossy(&buf[..n]);
                    if head.starts_with("GET /health") || head.starts_with("GET /ready") {
                        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(ok.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return; // dropped: the connection closes with no answer
                }
            });
        }
    });
    (addr, taken)
}

#[tokio::test]
async fn a_write_whose_connection_broke_is_not_sent_again_but_a_read_is() {
    let (crasher, taken) = crashing_backend().await;
    let healthy = TestBackend::start("healthy").await;
    let mut c = config(&[&healthy]);
    c.backends.insert(0, crasher.to_string().parse().unwrap());
    c.algorithm = Algorithm::RoundRobin;
    c.retry.budget_initial_tokens = 10;
    c.outlier.consecutive_failures = 0; // keep the crasher in rotation
    let lb = start(c).await;
    let cl = client();
    let url = format!("http://{}/data/k", lb.addr);
    let count = || taken.load(std::sync::atomic::Ordering::SeqCst);

    // Round robin alternates; each write that lands on the crasher must come back as an error
    // (its outcome is unknown), and reach no other backend.
    let mut broken_writes = 0;
    for (method, headers) in [
        ("PUT", &[][..]),
        ("DELETE", &[][..]),
        ("POST", &[][..]),
        ("PUT", &[("if-match", "\"1\"")][..]),
        ("PUT", &[("if-none-match", "*")][..]),
    ] {
        for _ in 0..2 {
            let (before, healthy_before) = (count(), healthy.hits());
            let (status, _, body, _) = send_with_headers(&cl, method, &url, headers, "{\"value\":1}")
                .await
                .unwrap();
            if count() > before {
                assert_eq!(status, 502, "{method} {headers:?}: {body}");
                assert!(body.contains("backend_connection_failed"), "{body}");
                assert_eq!(
                    healthy.hits(),
                    healthy_before,
                    "{method} {headers:?} was sent again"
                );
                broken_writes += 1;
            } else {
                assert!(status < 500, "{method} {headers:?}: {status} {body}");
            }
        }
    }
    assert_eq!(broken_writes, 5, "round robin gave the crasher one of each pair");

    // A read that lands on the crasher is retried on the healthy backend.
    for _ in 0..2 {
        let before = count();
        let (status, backend) = get(&cl, &url).await;
        assert_eq!((status, backend.as_str()), (200, "healthy"));
        if count() > before {
            lb.shutdown().await.unwrap();
            return;
        }
    }
    panic!("round robin never sent a GET to the crasher");
}

/// Sends `bytes` on a fresh connection to `addr` and returns everything answered until the
/// balancer closes the connection.
async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer))
        .await
        .expect("the balancer closes the connection")
        .unwrap();
    String::from_utf8(answer).unwrap()
}

#[tokio::test]
async fn request_heads_the_http_layer_refuses_get_json_errors_too() {
    let a = TestBackend::start("a").await;
    let lb = start(config(&[&a])).await;
    let long_url = format!("GET /data/{} HTTP/1.1\r\nHost: x\r\n\r\n", "k".repeat(100_000));
    let many: String = (0..200).map(|i| format!("X-Filler-{i}: x\r\n")).collect();
    let many = format!("GET /data/k HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for (request, status, code) in [
        (long_url.as_str(), 414, "uri_too_long"),
        (many.as_str(), 431, "headers_too_large"),
        ("GARBAGE\r\n\r\n", 400, "malformed_request"),
    ] {
        let answer = raw_exchange(lb.addr, request.as_bytes()).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["code"], code, "{head}");
    }
    assert_eq!(a.hits(), 0, "nothing refused reached the backend");
    lb.shutdown().await.unwrap();
}
