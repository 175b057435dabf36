//! The load loop against a tiny in-process axum server on a real socket: counts, schedule,
//! coordinated-omission correction, error kinds and interrupt.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use hakv_bench::{BenchConfig, KeyDist, StopReason, run};
use std::collections::HashMap;
use std::future::pending;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the test server was asked: method and key of every request, in arrival order.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(String, String, usize)>>,
}

#[derive(Clone)]
struct Behaviour {
    seen: Arc<Seen>,
    delay: Duration,
    write_status: StatusCode,
    read_status: StatusCode,
}

async fn handle(
    State(b): State<Behaviour>,
    method: axum::http::Method,
    Path(key): Path<String>,
    body: String,
) -> StatusCode {
    let value_len = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["value"].as_str().map(str::len))
        .unwrap_or(0);
    b.seen
        .requests
        .lock()
        .unwrap()
        .push((method.to_string(), key, value_len));
    tokio::time::sleep(b.delay).await;
    if method == axum::http::Method::GET {
        b.read_status
    } else {
        b.write_status
    }
}

async fn serve(behaviour: Behaviour) -> String {
    let app = Router::new()
        .route("/data/{*key}", get(handle).post(handle).put(handle))
        .with_state(behaviour);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn behaviour() -> Behaviour {
    Behaviour {
        seen: Arc::default(),
        delay: Duration::ZERO,
        write_status: StatusCode::CREATED,
        read_status: StatusCode::OK,
    }
}

fn config(target: String) -> BenchConfig {
    BenchConfig {
        target,
        connections: 4,
        duration: Duration::from_secs(30),
        ..BenchConfig::default()
    }
}

#[tokio::test]
async fn closed_loop_sends_exactly_the_requested_count() {
    let b = behaviour();
    let url = serve(b.clone()).await;
    let config = BenchConfig {
        requests: Some(500),
        write_ratio: 0.2,
        value_size: 33,
        keys: 20,
        key_dist: KeyDist::Uniform,
        ..config(url)
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    let seen = b.seen.requests.lock().unwrap();
    assert_eq!(seen.len(), 500);
    assert_eq!(report.requests, 500);
    assert_eq!(report.successful, 500);
    assert_eq!(report.stopped_by, StopReason::Requests);
    assert_eq!(report.reads + report.writes, 500);
    let posts: Vec<_> = seen.iter().filter(|r| r.0 == "POST").collect();
    assert_eq!(posts.len() as u64, report.writes);
    assert!(
        posts.iter().all(|r| r.2 == 33),
        "seed-shaped bodies of --value-size"
    );
    assert!(
        seen.iter()
            .all(|r| r.1.starts_with("bench-") && r.1[6..].parse::<u64>().unwrap() < 20)
    );
    assert_eq!(report.availability.by_requests, Some(1.0));
    assert!(report.latency_us.unwrap().p50 > 0);
    assert!(report.errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_hold_across_worker_threads() {
    let b = behaviour();
    let url = serve(b.clone()).await;
    let config = BenchConfig {
        requests: Some(3000),
        connections: 16,
        ..config(url)
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    assert_eq!(report.requests, 3000);
    assert_eq!(report.successful, 3000);
    assert_eq!(b.seen.requests.lock().unwrap().len(), 3000);
}

#[tokio::test]
async fn prefill_writes_every_key_once_before_the_run() {
    let b = behaviour();
    let url = serve(b.clone()).await;
    let config = BenchConfig {
        prefill: true,
        keys: 50,
        requests: Some(10),
        write_ratio: 0.0,
        write_method: hakv_bench::WriteMethod::Put,
        ..config(url)
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    let seen = b.seen.requests.lock().unwrap();
    let mut prefilled: Vec<&str> = seen[..50]
        .iter()
        .map(|r| {
            assert_eq!(r.0, "PUT");
            r.1.as_str()
        })
        .collect();
    prefilled.sort();
    prefilled.dedup();
    assert_eq!(prefilled.len(), 50);
    assert!(seen[50..].iter().all(|r| r.0 == "GET"));
    let prefill = report.prefill.unwrap();
    assert_eq!(
        (prefill.requests, prefill.failed, prefill.completed),
        (50, 0, true)
    );
    assert_eq!(report.requests, 10);
}

#[tokio::test]
async fn open_loop_keeps_to_its_schedule() {
    let b = behaviour();
    let url = serve(b.clone()).await;
    let config = BenchConfig {
        rate: Some(1000.0),
        requests: Some(100),
        ..config(url)
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    assert_eq!(report.requests, 100);
    assert_eq!(report.stopped_by, StopReason::Requests);
    assert_eq!(report.mode, "open-loop");
    // Request 99 is due at 99 ms; the generator may only run up to 1 ms early.
    assert!(report.elapsed_seconds >= 0.097, "{}", report.elapsed_seconds);
}

#[tokio::test]
async fn open_loop_latency_counts_from_the_intended_send_time() {
    // One connection, 30 ms per answer, 100 requests/s offered: request i is due at 10·i ms but
    // cannot finish before 30·(i+1) ms, so the last of 30 waits at least 610 ms. Without the
    // coordinated-omission correction every latency would be about 30 ms.
    let b = Behaviour {
        delay: Duration::from_millis(30),
        ..behaviour()
    };
    let url = serve(b).await;
    let config = BenchConfig {
        rate: Some(100.0),
        requests: Some(30),
        connections: 1,
        write_ratio: 0.0,
        ..config(url)
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    assert_eq!(report.requests, 30);
    let latency = report.latency_us.unwrap();
    assert!(latency.max >= 610_000, "max {}µs", latency.max);
    assert!(latency.min >= 30_000, "min {}µs", latency.min);
}

#[tokio::test]
async fn errors_are_sorted_by_kind() {
    let b = Behaviour {
        write_status: StatusCode::SERVICE_UNAVAILABLE,
        read_status: StatusCode::NOT_FOUND,
        ..behaviour()
    };
    let url = serve(b).await;
    let config = BenchConfig {
        requests: Some(300),
        write_ratio: 0.5,
        ..config(url)
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    // A 404 to a read is a correct answer; a 503 is a failure.
    assert_eq!(report.reads_not_found, report.reads);
    assert_eq!(report.successful, report.reads);
    assert_eq!(
        report.errors,
        HashMap::from([("status_503".to_string(), report.writes)])
            .into_iter()
            .collect()
    );
    assert_eq!(report.errors_by_class["5xx"], report.writes);
    assert_eq!(report.availability.by_requests, Some(report.reads as f64 / 300.0));
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_and_zero_availability() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = BenchConfig {
        requests: Some(20),
        connections: 2,
        ..config(format!("http://127.0.0.1:{port}"))
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    assert_eq!(report.requests, 20);
    assert_eq!(report.errors["connect"], 20);
    assert_eq!(report.availability.by_requests, Some(0.0));
    assert_eq!(report.availability.by_time, Some(0.0));
    assert!(report.latency_us.is_none());
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let b = Behaviour {
        delay: Duration::from_secs(30),
        ..behaviour()
    };
    let url = serve(b).await;
    let config = BenchConfig {
        requests: Some(3),
        connections: 1,
        timeout: Duration::from_millis(100),
        ..config(url)
    };
    let report = run(&config, pending(), |_| {}).await.unwrap();
    assert_eq!(report.errors["timeout"], 3);
}

#[tokio::test]
async fn interrupt_stops_early_and_still_reports() {
    let b = Behaviour {
        delay: Duration::from_millis(1),
        ..behaviour()
    };
    let url = serve(b).await;
    let config = config(url); // 30 s, no request cap
    let stop = tokio::time::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let report = run(&config, stop, |_| {}).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(report.stopped_by, StopReason::Interrupted);
    assert!(report.requests > 0);
}

#[tokio::test]
async fn interrupt_stops_a_run_still_connecting() {
    // A listener that never accepts, with the smallest backlog: the first connects fill its
    // queue, and the kernel drops the others' handshakes, which then hang.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let mut config = config(format!("http://{}", listener.local_addr().unwrap()));
    config.connections = 8;
    config.timeout = Duration::from_secs(30);
    let stop = tokio::time::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let report = run(&config, stop, |_| {}).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the connects' timeout"
    );
    assert_eq!(report.stopped_by, StopReason::Interrupted);
    assert_eq!(report.requests, 0);
}

#[tokio::test]
async fn progress_is_reported_each_second() {
    let url = serve(behaviour()).await;
    let config = BenchConfig {
        duration: Duration::from_millis(2500),
        connections: 1,
        rate: Some(200.0),
        ..config(url)
    };
    let mut lines = Vec::new();
    let report = run(&config, pending(), |p| lines.push(p.to_string()))
        .await
        .unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("req/s") && lines[0].contains("p99"),
        "{}",
        lines[0]
    );
    assert_eq!(report.stopped_by, StopReason::Duration);
}
