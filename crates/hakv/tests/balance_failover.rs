//! `hakv balance` as a real process in front of real `hakv serve` processes: a backend is
//! killed under continuous GET/PUT load and restarted; clients must see no failed read and no
//! write sent twice (a write in flight at the kill answers 502, its outcome unknown), and
//! health checks must mark it down and up again within fall × interval and rise × interval.
//! Also: SIGHUP reloads the config file, SIGTERM drains and exits 0.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use support::HakvProcess;

const INTERVAL_MS: u64 = 100;
const RISE: u64 = 2;
const FALL: u64 = 3;

fn serve(listen: &str, dir: &Path, log: &Path) -> HakvProcess {
    HakvProcess::spawn(
        &["serve", "--listen", listen, "--data-dir", dir.to_str().unwrap()],
        log,
    )
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn request(c: &HttpClient, method: &str, url: &str, body: &str) -> Result<(u16, String), String> {
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), c.request(req))
        .await
        .map_err(|_| "client timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn status(c: &HttpClient, lb: SocketAddr) -> serde_json::Value {
    let (_, body) = request(c, "GET", &format!("http://{lb}/lb/status"), "")
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn backend(status: &serde_json::Value, addr: SocketAddr) -> &serde_json::Value {
    status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["addr"] == addr.to_string().as_str())
        .unwrap()
}

/// Polls the status until `cond` holds for `addr`'s entry, up to `limit`; time it took.
async fn wait_backend(
    c: &HttpClient,
    lb: SocketAddr,
    addr: SocketAddr,
    limit: Duration,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond(backend(&status(c, lb).await, addr)) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_backend_under_load_fails_no_read_and_repeats_no_write() {
    let tmp = tempfile::tempdir().unwrap();
    let a = serve("127.0.0.1:0", &tmp.path().join("a"), &tmp.path().join("a.log"));
    let b = serve("127.0.0.1:0", &tmp.path().join("b"), &tmp.path().join("b.log"));
    let a_addr = a.addr;
    let config = tmp.path().join("lb.toml");
    // Short ejections so a backend that was ejected while dead is back soon after it returns.
    std::fs::write(&config, "[outlier]\nbase_ejection_ms = 200\n").unwrap();
    let interval = INTERVAL_MS.to_string();
    let (rise, fall) = (RISE.to_string(), FALL.to_string());
    let lb = HakvProcess::spawn(
        &[
            "balance",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
            "--backend",
            &a.addr.to_string(),
            "--backend",
            &b.addr.to_string(),
            "--health-interval-ms",
            &interval,
            "--health-timeout-ms",
            "80",
            "--rise",
            &rise,
            "--fall",
            &fall,
            "--algorithm",
            "round-robin",
        ],
        &tmp.path().join("lb.log"),
    );
    let lb_addr = lb.addr;
    let lb_admin = lb.admin();

    // Continuous load: 4 clients alternating PUT and GET, bounded in time and count.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for t in 0..4 {
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        load.push(tokio::spawn(async move {
            let c = client();
            let deadline = Instant::now() + Duration::from_secs(90);
            for i in 0..200_000u64 {
                if stop.load(SeqCst) || Instant::now() > deadline {
                    break;
                }
                let url = format!("http://{lb_addr}/data/t{t}-{}", i % 32);
                let (method, body) = if i % 2 == 0 {
                    ("PUT", format!("{{\"value\":{i}}}"))
                } else {
                    ("GET", String::new())
                };
                match request(&c, method, &url, &body).await {
                    // 404: the nodes are independent single nodes (no Raft yet), so a GET may
                    // reach the node that did not take the PUT. Not a balancer failure.
                    Ok((s, _)) if s < 500 => {
                        ok.fetch_add(1, SeqCst);
                    }
                    Ok((s, body)) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{method} {url}: {s} {body}")),
                    Err(e) => failures.lock().unwrap().push(format!("{method} {url}: {e}")),
                }
            }
        }));
    }
    let c = client();
    let wait_ok = |n: u64| {
        let ok = ok.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while ok.load(SeqCst) < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(ok.load(SeqCst) >= n, "load stalled at {}", ok.load(SeqCst));
        }
    };
    wait_ok(300).await;

    // Kill A (SIGKILL, mid-load).
    drop(a);
    let down = wait_backend(&c, lb_admin, a_addr, Duration::from_secs(10), |b| {
        b["healthy"] == false
    })
    .await
    .expect("A marked down");
    // fall × interval, plus one interval of slack: the kill lands anywhere in a probe period.
    let bound = Duration::from_millis((FALL + 1) * INTERVAL_MS);
    assert!(down <= bound, "marked down after {down:?}, bound {bound:?}");
    wait_ok(ok.load(SeqCst) + 300).await;

    // Restart A on the same port and data directory.
    let a = serve(
        &a_addr.to_string(),
        &tmp.path().join("a"),
        &tmp.path().join("a2.log"),
    );
    let up = wait_backend(&c, lb_admin, a_addr, Duration::from_secs(10), |b| {
        b["healthy"] == true
    })
    .await
    .expect("A marked up");
    let bound = Duration::from_millis((RISE + 1) * INTERVAL_MS);
    assert!(up <= bound, "marked up after {up:?}, bound {bound:?}");
    let before = backend(&status(&c, lb_admin).await, a_addr)["requests"]
        .as_u64()
        .unwrap();
    let traffic = wait_backend(&c, lb_admin, a_addr, Duration::from_secs(10), |b| {
        b["requests"].as_u64().unwrap() > before + 10
    })
    .await;
    assert!(traffic.is_some(), "A gets traffic again after its restart");

    stop.store(true, SeqCst);
    for l in load {
        l.await.unwrap();
    }
    // The kill did hit traffic (refused or broken attempts on A), and those were retried.
    let s = status(&c, lb_admin).await;
    assert!(backend(&s, a_addr)["errors"].as_u64().unwrap() > 0, "{s}");
    assert!(s["retries"].as_u64().unwrap() > 0, "{s}");
    // A write in flight on A when it died may have been applied there: the balancer does not
    // send it again (at most once) and answers 502; at most one per client. Nothing else fails.
    let failures = failures.lock().unwrap();
    let (unknown_writes, other): (Vec<&String>, Vec<&String>) = failures.iter().partition(|f| {
        f.starts_with("PUT") && f.contains(": 502 ") && f.contains("backend_connection_failed")
    });
    assert!(
        other.is_empty() && unknown_writes.len() <= 4,
        "{} failed requests, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    eprintln!(
        "ok requests: {}, down after {down:?}, up after {up:?}",
        ok.load(SeqCst)
    );
    drop(a);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file_and_sigterm_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("lb.toml");
    std::fs::write(&config, "backends = [\"127.0.0.1:1\"]\nalgorithm = \"p2c\"\n").unwrap();
    let mut lb = HakvProcess::spawn(
        &[
            "balance",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
        &tmp.path().join("lb.log"),
    );
    let c = client();
    let s = status(&c, lb.admin()).await;
    assert_eq!(
        (s["algorithm"].as_str(), s["backends"].as_array().unwrap().len()),
        (Some("p2c"), 1)
    );

    std::fs::write(
        &config,
        "backends = [\"127.0.0.1:1=2\", \"127.0.0.1:2\"]\nalgorithm = \"least-connections\"\n",
    )
    .unwrap();
    let pid = lb.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(&c, lb.admin()).await;
        if s["backends"].as_array().unwrap().len() == 2 {
            assert_eq!(s["algorithm"], "least-connections");
            assert_eq!(s["backends"][0]["weight"], 2);
            break;
        }
        assert!(Instant::now() < deadline, "reload not applied: {s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A broken file is refused and the running configuration stays.
    std::fs::write(&config, "backends = [\"nope\"]\n").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        status(&c, lb.admin()).await["backends"].as_array().unwrap().len(),
        2
    );

    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Some(code) = lb.child.try_wait().unwrap() {
            break code;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(code.success(), "{code:?}");
    let log = std::fs::read_to_string(tmp.path().join("lb.log")).unwrap();
    assert!(log.contains("reload refused"), "{log}");
}
