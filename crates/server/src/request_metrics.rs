//! Per-request metrics with cached handles: looking labels up in the registry on every request
//! (two label sets, hashed and compared) costs more than serving a cached read, so each
//! (route, method, status) handle is registered on first use and then reused.

use metrics::{Counter, Histogram, counter, histogram};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

/// Route labels: a bounded set, never the raw path.
pub const ROUTES: [&str; 12] = [
    "/data/{key}",
    "/data",
    "/health",
    "/ready",
    "/metrics",
    "/cluster",
    "/cluster/members",
    "/backup",
    "/auth/tokens",
    "/ui",
    "/openapi.json",
    "unmatched",
];
const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "other"];
const STATUSES: [(u16, &str); 22] = [
    (200, "200"),
    (201, "201"),
    (304, "304"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (412, "412"),
    (413, "413"),
    (414, "414"),
    (415, "415"),
    (421, "421"),
    (429, "429"),
    (431, "431"),
    (500, "500"),
    (503, "503"),
    (504, "504"),
    (507, "507"),
    (0, "other"),
];

struct Table {
    counters: Vec<OnceLock<Counter>>,
    latencies: Vec<OnceLock<Histogram>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| Table {
    counters: (0..ROUTES.len() * METHODS.len() * STATUSES.len())
        .map(|_| OnceLock::new())
        .collect(),
    latencies: (0..ROUTES.len() * METHODS.len())
        .map(|_| OnceLock::new())
        .collect(),
});

/// The index in [`ROUTES`] of a matched route pattern.
pub fn route_index(matched: Option<&str>) -> usize {
    match matched {
        Some("/data/{*key}") | Some("/data/") => 0,
        Some("/data") => 1,
        Some("/health") => 2,
        Some("/ready") => 3,
        Some("/metrics") => 4,
        Some("/cluster") => 5,
        Some("/cluster/members") | Some("/cluster/members/{id}") | Some("/cluster/members/{id}/promote") => 6,
        Some("/backup") => 7,
        Some("/auth/tokens") | Some("/auth/tokens/{id}") => 8,
        Some("/ui") | Some("/ui/") | Some("/ui/{file}") => 9,
        Some("/openapi.json") => 10,
        _ => ROUTES.len() - 1,
    }
}

/// Counts one answered request and records its latency.
pub fn record_request(route: usize, method: &http::Method, status: http::StatusCode, elapsed: Duration) {
    let method = method_index(method);
    let status = STATUSES
        .iter()
        .position(|(code, _)| *code == status.as_u16())
        .unwrap_or(STATUSES.len() - 1);
    let table = &*TABLE;
    let slot = (route * METHODS.len() + method) * STATUSES.len() + status;
    table.counters[slot]
        .get_or_init(|| {
            counter!("hakv_http_requests_total", "route" => ROUTES[route], "method" => METHODS[method], "status" => STATUSES[status].1)
        })
        .increment(1);
    table.latencies[route * METHODS.len() + method]
        .get_or_init(|| histogram!("hakv_http_request_duration_seconds", "route" => ROUTES[route], "method" => METHODS[method]))
        .record(elapsed.as_secs_f64());
}

fn method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::POST => 2,
        http::Method::PUT => 3,
        http::Method::DELETE => 4,
        _ => 5,
    }
}
