//! Test helpers: real HTTP backends on loopback (in-process hyper servers whose behaviour a
//! test controls), a balancer started on 127.0.0.1:0, and a small client.
#![allow(dead_code)]

use bytes::Bytes;
use hakv_balancer::{Balancer, BalancerConfig, BalancerHandle};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How a test backend answers `/data/*` and friends.
#[derive(Debug)]
pub struct Behaviour {
    /// Status for data requests (200 unless a test makes it fail).
    pub status: AtomicU16,
    /// Added before answering a data request.
    pub delay: Mutex<Duration>,
    /// When set, each data request waits for a permit (tests release them one by one).
    pub gate: Mutex<Option<Arc<Semaphore>>>,
    /// The body of `GET /cluster`, if this backend pretends to be a hakv node in a cluster.
    pub cluster: Mutex<Option<String>>,
    /// What `/ready` says (503 when false), like a hakv member during an election.
    pub ready: AtomicBool,
}

/// A real HTTP server on 127.0.0.1 that counts the requests it gets.
pub struct TestBackend {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    pub writes: Arc<AtomicU64>,
    pub in_progress: Arc<AtomicU64>,
    pub behaviour: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestBackend {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let writes = Arc::new(AtomicU64::new(0));
        let in_progress = Arc::new(AtomicU64::new(0));
        let behaviour = Arc::new(Behaviour {
            status: AtomicU16::new(200),
            delay: Mutex::new(Duration::ZERO),
            gate: Mutex::new(None),
            cluster: Mutex::new(None),
            ready: AtomicBool::new(true),
        });
        let state = (
            name.to_owned(),
            Arc::clone(&hits),
            Arc::clone(&writes),
            Arc::clone(&in_progress),
            Arc::clone(&behaviour),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            name: name.to_owned(),
            addr,
            hits,
            writes,
            in_progress,
            behaviour,
            task,
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(SeqCst)
    }

    pub fn set_status(&self, status: u16) {
        self.behaviour.status.store(status, SeqCst);
    }

    pub fn set_delay(&self, d: Duration) {
        *self.behaviour.delay.lock().unwrap() = d;
    }

    pub fn set_gate(&self, gate: Option<Arc<Semaphore>>) {
        *self.behaviour.gate.lock().unwrap() = gate;
    }

    pub fn set_ready(&self, ready: bool) {
        self.behaviour.ready.store(ready, SeqCst);
    }

    pub fn set_cluster(&self, body: Option<String>) {
        *self.behaviour.cluster.lock().unwrap() = body;
    }
}

type State = (
    String,
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Arc<Behaviour>,
);

async fn answer(state: State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (name, hits, writes, in_progress, behaviour) = state;
    let path = req.uri().path().to_owned();
    if path == "/ready" || path == "/health" {
        if !behaviour.ready.load(SeqCst) {
            return reply(503, "not ready", &name);
        }
        return Response::new(Full::new(Bytes::from_static(b"{\"ready\":true}")));
    }
    if path == "/cluster" {
        let body = behaviour.cluster.lock().unwrap().clone();
        return match body {
            Some(b) => Response::new(Full::new(Bytes::from(b))),
            None => reply(404, "no cluster", &name),
        };
    }
    hits.fetch_add(1, SeqCst);
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        writes.fetch_add(1, SeqCst);
    }
    in_progress.fetch_add(1, SeqCst);
    let gate = behaviour.gate.lock().unwrap().clone();
    if let Some(g) = gate {
        g.acquire().await.unwrap().forget();
    }
    let delay = *behaviour.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // Echo the request body (proves bodies are forwarded) or the backend's name.
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    in_progress.fetch_sub(1, SeqCst);
    let status = behaviour.status.load(SeqCst);
    let text = if body.is_empty() {
        name.clone()
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    reply(status, &text, &name)
}

fn reply(status: u16, body: &str, name: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("x-backend", name.parse().unwrap());
    r
}

/// A config for `backends` with fast health checks, on 127.0.0.1:0.
pub fn config(backends: &[&TestBackend]) -> BalancerConfig {
    let mut c = BalancerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        backends: backends
            .iter()
            .map(|b| b.addr.to_string().parse().unwrap())
            .collect(),
        seed: 42,
        ..BalancerConfig::default()
    };
    c.health.interval_ms = 100;
    c.health.timeout_ms = 100;
    c
}

pub async fn start(config: BalancerConfig) -> BalancerHandle {
    Balancer::new(config).unwrap().spawn().await.unwrap()
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// One request; (status, x-backend header or "", body).
pub async fn send(
    client: &TestClient,
    method: &str,
    url: &str,
    body: &str,
) -> Result<(u16, String, String, http::HeaderMap), String> {
    send_with_headers(client, method, url, &[], body).await
}

/// `send` with extra request headers.
pub async fn send_with_headers(
    client: &TestClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String, String, http::HeaderMap), String> {
    let mut req = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let backend = headers
        .get("x-backend")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        status,
        backend,
        String::from_utf8_lossy(&body).into_owned(),
        headers,
    ))
}

pub async fn get(client: &TestClient, url: &str) -> (u16, String) {
    let (s, b, _, _) = send(client, "GET", url, "").await.unwrap();
    (s, b)
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Request counts per backend name for `n` sequential GETs of `path(i)`.
pub async fn spread(
    lb: SocketAddr,
    n: usize,
    path: impl Fn(usize) -> String,
) -> std::collections::BTreeMap<String, u64> {
    let c = client();
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..n {
        let (status, backend) = get(&c, &format!("http://{lb}{}", path(i))).await;
        assert_eq!(status, 200);
        *counts.entry(backend).or_insert(0) += 1;
    }
    counts
}
