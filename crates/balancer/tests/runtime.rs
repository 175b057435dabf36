//! Changes without restart (admin API), draining, graceful shutdown, leader-aware writes and
//! the observability endpoints, through the real proxy.

mod common;

use common::*;
use hakv_balancer::Algorithm;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

#[tokio::test]
async fn backends_and_weights_change_at_run_time_through_the_admin_api() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let mut c = config(&[&a]);
    c.algorithm = Algorithm::WeightedRoundRobin;
    let lb = start(c).await;
    let cl = client();
    let admin = |p: &str| format!("http://{}{p}", lb.admin_addr);
    let body = format!("{{\"addr\":\"{}\",\"weight\":3}}", b.addr);
    let (s, _, _, _) = send(&cl, "POST", &admin("/lb/backends"), &body).await.unwrap();
    assert_eq!(s, 201);
    let (s, _, resp, _) = send(&cl, "POST", &admin("/lb/backends"), &body).await.unwrap();
    assert_eq!(s, 409, "{resp}");
    let got = spread(lb.addr, 40, |_| "/data/k".into()).await;
    assert_eq!((got["a"], got["b"]), (10, 30));

    let path = format!("/lb/backends/{}", b.addr);
    let (s, _, _, _) = send(&cl, "PATCH", &admin(&path), "{\"weight\":1}").await.unwrap();
    assert_eq!(s, 200);
    let got = spread(lb.addr, 40, |_| "/data/k".into()).await;
    assert_eq!((got["a"], got["b"]), (20, 20));

    let (s, _, _, _) = send(&cl, "DELETE", &admin(&path), "").await.unwrap();
    assert_eq!(s, 200);
    let got = spread(lb.addr, 10, |_| "/data/k".into()).await;
    assert_eq!(got.get("b"), None);
    let (s, _, resp, _) = send(&cl, "DELETE", &admin(&path), "").await.unwrap();
    assert_eq!(s, 404, "{resp}");
    let (s, _, resp, _) = send(&cl, "PATCH", &admin("/lb/backends/x:1"), "{\"weight\":0}")
        .await
        .unwrap();
    assert!(resp.contains("\"code\""), "{resp}");
    assert_eq!(s, 404);
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_an_admin_token_changes_need_it_and_status_stays_readable() {
    let a = TestBackend::start("a").await;
    let mut c = config(&[&a]);
    c.admin_token = Some("adm1n-s3cret".into());
    let lb = start(c).await;
    let cl = client();
    let drain = format!("http://{}/lb/backends/{}/drain", lb.admin_addr, a.addr);
    for headers in [
        &[][..],
        &[("authorization", "Bearer wrong-token")],
        &[("authorization", "adm1n-s3cret")],
    ] {
        let (s, _, body, h) = send_with_headers(&cl, "POST", &drain, headers, "").await.unwrap();
        assert_eq!(s, 401, "{headers:?}: {body}");
        assert_eq!(h["www-authenticate"], "Bearer");
        assert!(body.contains("\"unauthorized\""), "{body}");
    }
    assert_eq!(
        lb.balancer.status()["backends"][0]["draining"],
        false,
        "nothing changed"
    );
    let (s, _, body, _) = send(&cl, "GET", &format!("http://{}/lb/status", lb.admin_addr), "")
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    let auth = [("authorization", "Bearer adm1n-s3cret")];
    let (s, _, body, _) = send_with_headers(&cl, "POST", &drain, &auth, "").await.unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(lb.balancer.status()["backends"][0]["draining"], true);
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_drained_backend_finishes_its_in_flight_requests_and_gets_no_new_ones() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    a.set_gate(Some(gate.clone()));
    let mut c = config(&[&a, &b]);
    c.algorithm = Algorithm::RoundRobin;
    let lb = start(c).await;
    let url = format!("http://{}/data/k", lb.addr);
    // The first request goes to `a` and waits there.
    let held = tokio::spawn({
        let url = url.clone();
        async move { get(&client(), &url).await }
    });
    assert!(eventually(Duration::from_secs(5), || a.in_progress.load(SeqCst) == 1).await);
    let (s, _, _, _) = send(
        &client(),
        "POST",
        &format!("http://{}/lb/backends/{}/drain", lb.admin_addr, a.addr),
        "",
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    let got = spread(lb.addr, 10, |_| "/data/k".into()).await;
    assert_eq!(got.get("a"), None, "{got:?}");
    let status = lb.balancer.status();
    assert_eq!(status["backends"][0]["draining"], true);
    assert_eq!(status["backends"][0]["in_flight"], 1);
    gate.add_permits(1);
    assert_eq!(held.await.unwrap(), (200, "a".to_string()));
    assert!(
        eventually(
            Duration::from_secs(5),
            || lb.balancer.status()["backends"][0]["in_flight"] == 0
        )
        .await
    );
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_drains_the_request_in_progress_and_then_stops_listening() {
    let a = TestBackend::start("a").await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    a.set_gate(Some(gate.clone()));
    let lb = start(config(&[&a])).await;
    let addr = lb.addr;
    let held = tokio::spawn(async move { get(&client(), &format!("http://{addr}/data/k")).await });
    assert!(eventually(Duration::from_secs(5), || a.in_progress.load(SeqCst) == 1).await);
    let shutdown = tokio::spawn(lb.shutdown());
    // The request that was in progress completes normally...
    gate.add_permits(1);
    assert_eq!(held.await.unwrap().0, 200);
    shutdown.await.unwrap().unwrap();
    // ...and afterwards nobody listens.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A FAKE: two in-process backends that answer `GET /cluster` with a `leader` field, standing
/// in for hakv Raft nodes until the cluster exists. They test the balancer's side of the
/// contract (documented in `leader.rs` and docs/balancer.md), not Raft.
#[tokio::test]
async fn writes_follow_the_leader_named_by_cluster_and_reads_use_the_algorithm() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let say_leader =
        |addr: std::net::SocketAddr| Some(format!("{{\"leader\":\"http://{addr}\",\"term\":1}}"));
    a.set_cluster(say_leader(b.addr));
    b.set_cluster(say_leader(b.addr));
    let mut c = config(&[&a, &b]);
    c.algorithm = Algorithm::RoundRobin;
    c.leader_aware = true;
    c.leader_refresh_ms = 50;
    let lb = start(c).await;
    let b_text = b.addr.to_string();
    assert!(
        eventually(Duration::from_secs(5), || lb.balancer.status()["leader"]
            == b_text.as_str())
        .await
    );
    let cl = client();
    let url = format!("http://{}/data/k", lb.addr);
    for method in ["PUT", "POST", "DELETE", "PUT"] {
        let (s, backend, _, _) = send(&cl, method, &url, "{\"value\":1}").await.unwrap();
        assert_eq!((s, backend.as_str()), (200, "b"), "{method}");
    }
    let reads = spread(lb.addr, 10, |_| "/data/k".into()).await;
    assert_eq!((reads["a"], reads["b"]), (5, 5));

    // Leadership moves to `a`: writes follow within a few refreshes.
    a.set_cluster(say_leader(a.addr));
    b.set_cluster(say_leader(a.addr));
    let a_text = a.addr.to_string();
    assert!(
        eventually(Duration::from_secs(5), || lb.balancer.status()["leader"]
            == a_text.as_str())
        .await
    );
    let before = a.writes.load(SeqCst);
    for _ in 0..4 {
        let (s, backend, _, _) = send(&cl, "PUT", &url, "{\"value\":2}").await.unwrap();
        assert_eq!((s, backend.as_str()), (200, "a"));
    }
    assert_eq!(a.writes.load(SeqCst) - before, 4);
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn status_and_metrics_describe_each_backend_and_metrics_pass_promtool() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let lb = start(config(&[&a, &b])).await;
    let _ = spread(lb.addr, 10, |i| format!("/data/k{i}")).await;
    let status = lb.balancer.status();
    assert_eq!(status["algorithm"], "round-robin");
    assert_eq!(status["requests"], 10);
    for key in [
        "addr",
        "weight",
        "healthy",
        "in_flight",
        "ejections",
        "ewma_latency_ms",
        "requests",
        "errors",
    ] {
        assert!(
            status["backends"][0].get(key).is_some(),
            "missing {key}: {status}"
        );
    }
    let cl = client();
    let (s, _, text, headers) = send(&cl, "GET", &format!("http://{}/metrics", lb.admin_addr), "")
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        text.contains(&format!(
            "hakv_lb_backend_requests_total{{backend=\"{}\"}} 5",
            a.addr
        )),
        "{text}"
    );
    assert!(text.contains("hakv_lb_backend_latency_seconds_bucket"));
    let (s, _, body, _) = send(&cl, "GET", &format!("http://{}/lb/status", lb.admin_addr), "")
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert!(body.contains("\"backends\""));

    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // promtool comes from the `prometheus` package; without it only the format is unchecked.
        Err(e) => eprintln!("promtool not run ({e}); install the prometheus package to check /metrics"),
    }
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn forwarded_headers_reach_the_backend_and_hop_by_hop_ones_do_not() {
    // A backend that echoes the request headers it received.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Every connection is served: the balancer also asks `/cluster` once at start.
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let mut lines: Vec<String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                    .collect();
                lines.sort();
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from(lines.join("\n")),
                )))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc),
            );
        }
    });
    let mut c = hakv_balancer::BalancerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        backends: vec![addr.to_string().parse().unwrap()],
        ..Default::default()
    };
    c.health.interval_ms = 60_000;
    let lb = start(c).await;
    let req = http::Request::builder()
        .uri(format!("http://{}/data/k", lb.addr))
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let seen = String::from_utf8_lossy(&body);
    assert!(seen.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1"), "{seen}");
    assert!(seen.contains("forwarded: for=127.0.0.1;proto=http"), "{seen}");
    assert!(!seen.contains("x-private"), "{seen}");
    assert!(!seen.contains("te: "), "{seen}");

    // The request id: the client's goes to the backend and comes back; without one, the
    // balancer makes one, and the backend sees the id the client gets.
    let with_id = http::Request::builder()
        .uri(format!("http://{}/data/k", lb.addr))
        .header("x-request-id", "client-id-1")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client().request(with_id).await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "client-id-1");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("x-request-id: client-id-1"));
    let without = http::Request::builder()
        .uri(format!("http://{}/data/k", lb.addr))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client().request(without).await.unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains(&format!("x-request-id: {made}")),
        "{made}"
    );
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_api_is_unreachable_through_the_proxy_port() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let lb = start(config(&[&a])).await;
    assert_ne!(lb.admin_addr, lb.addr);
    assert!(lb.admin_addr.ip().is_loopback());
    let cl = client();
    // On the proxy port, `/lb/*` is just a path: it goes to a backend, and changes nothing.
    let body = format!("{{\"addr\":\"{}\"}}", b.addr);
    let (_, backend, _, _) = send(&cl, "POST", &format!("http://{}/lb/backends", lb.addr), &body)
        .await
        .unwrap();
    assert_eq!(backend, "a", "proxied to the backend");
    let (_, backend, _, _) = send(&cl, "GET", &format!("http://{}/lb/status", lb.addr), "")
        .await
        .unwrap();
    assert_eq!(backend, "a");
    let (s, _, status, _) = send(&cl, "GET", &format!("http://{}/lb/status", lb.admin_addr), "")
        .await
        .unwrap();
    assert_eq!(s, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["backends"].as_array().unwrap().len(), 1, "{status}");
    // The admin listener serves nothing else.
    let (s, _, _, _) = send(&cl, "GET", &format!("http://{}/data/k", lb.admin_addr), "")
        .await
        .unwrap();
    assert_eq!(s, 404);
    lb.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_api_names_backends_by_encoded_address_and_answers_wrong_methods_with_405() {
    let (a, b) = (TestBackend::start("a").await, TestBackend::start("b").await);
    let lb = start(config(&[&a])).await;
    let cl = client();
    let admin = |p: &str| format!("http://{}{p}", lb.admin_addr);
    // A weight written as a whole float is a whole number, as on the members' API.
    let body = format!("{{\"addr\":\"{}\",\"weight\":2.0}}", b.addr);
    let (s, _, resp, _) = send(&cl, "POST", &admin("/lb/backends"), &body).await.unwrap();
    assert_eq!(s, 201, "{resp}");
    for bad in [
        r#"{"addr":"127.0.0.1:9","weight":1.5}"#,
        r#"{"addr":"127.0.0.1:9","weight":-1}"#,
    ] {
        let (s, _, resp, _) = send(&cl, "POST", &admin("/lb/backends"), bad).await.unwrap();
        assert_eq!(s, 400, "{bad}: {resp}");
    }
    // Addresses follow the one rule of every subcommand: an IP or a DNS name, a port 1..65535.
    for bad in [":80", "a@b:1", "a!:1", "localhost:0", "x%41@b:1"] {
        let body = format!("{{\"addr\":\"{bad}\"}}");
        let (s, _, resp, _) = send(&cl, "POST", &admin("/lb/backends"), &body).await.unwrap();
        assert_eq!(s, 400, "{bad}: {resp}");
    }

    // OpenAPI clients percent-encode the address's `:`; both forms name the backend.
    let encoded = b.addr.to_string().replace(':', "%3A");
    let (s, _, resp, _) = send(
        &cl,
        "PATCH",
        &admin(&format!("/lb/backends/{encoded}")),
        "{\"weight\":3.0}",
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{resp}");
    let (s, _, resp, _) = send(&cl, "POST", &admin(&format!("/lb/backends/{encoded}/drain")), "")
        .await
        .unwrap();
    assert_eq!(s, 200, "{resp}");
    // One path segment names the backend: no `/drain` repeated, no slashes in an address.
    let (s, _, resp, _) = send(
        &cl,
        "POST",
        &admin(&format!("/lb/backends/{}/drain/drain", b.addr)),
        "",
    )
    .await
    .unwrap();
    assert_eq!(s, 404, "{resp}");

    for (method, path, allowed) in [
        ("TRACE", "/lb/status".to_owned(), "GET"),
        ("PUT", "/lb/backends".to_owned(), "POST"),
        ("POST", "/metrics".to_owned(), "GET"),
        ("DELETE", "/ui".to_owned(), "GET, HEAD"),
        ("PATCH", format!("/lb/backends/{encoded}/drain"), "POST"),
        ("GET", format!("/lb/backends/{encoded}"), "PATCH, DELETE"),
    ] {
        let (s, _, resp, headers) = send(&cl, method, &admin(&path), "").await.unwrap();
        assert_eq!(s, 405, "{method} {path}: {resp}");
        assert_eq!(headers["allow"], allowed, "{method} {path}");
        assert!(resp.contains("\"method_not_allowed\""), "{resp}");
    }
    let (s, _, resp, _) = send(&cl, "DELETE", &admin(&format!("/lb/backends/{encoded}")), "")
        .await
        .unwrap();
    assert_eq!(s, 200, "{resp}");
    lb.shutdown().await.unwrap();
}
