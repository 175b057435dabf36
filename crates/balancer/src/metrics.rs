//! `/metrics` in the Prometheus text format, written by hand from the atomics the hot path
//! already keeps (no global recorder, no per-request map lookups).

use crate::backend::LATENCY_BUCKETS;
use crate::proxy::Shared;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

/// The codes of `ProxyError`, in the order of `Counters::errors`.
pub const ERROR_CODES: [&str; 7] = [
    "no_backend",
    "backend_unreachable",
    "backend_connection_failed",
    "backend_timeout",
    "timeout",
    "overloaded",
    "bad_request_body",
];

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values are backend addresses (`host:port`), which never need escaping, but escape
/// anyway so a strange hostname cannot break the exposition.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(4096);
    let c = &shared.counters;
    header(
        &mut out,
        "hakv_build_info",
        "gauge",
        "Always 1; the labels say which build runs.",
    );
    let _ = writeln!(
        out,
        "hakv_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    header(
        &mut out,
        "hakv_lb_requests_total",
        "counter",
        "Client requests received (admin requests excluded).",
    );
    let _ = writeln!(out, "hakv_lb_requests_total {}", c.requests.load(Relaxed));
    header(
        &mut out,
        "hakv_lb_retries_total",
        "counter",
        "Retries sent to another backend.",
    );
    let _ = writeln!(out, "hakv_lb_retries_total {}", c.retries.load(Relaxed));
    header(
        &mut out,
        "hakv_lb_panic_requests_total",
        "counter",
        "Requests placed while no backend was available (health checks ignored).",
    );
    let _ = writeln!(
        out,
        "hakv_lb_panic_requests_total {}",
        c.panic_requests.load(Relaxed)
    );
    header(
        &mut out,
        "hakv_lb_retry_budget_exhausted_total",
        "counter",
        "Retries refused because the retry budget was spent.",
    );
    let _ = writeln!(
        out,
        "hakv_lb_retry_budget_exhausted_total {}",
        shared.budget.exhausted()
    );
    header(
        &mut out,
        "hakv_lb_errors_total",
        "counter",
        "Error answers made by the balancer itself, by code.",
    );
    for (code, n) in ERROR_CODES.iter().zip(&c.errors) {
        let _ = writeln!(out, "hakv_lb_errors_total{{code=\"{code}\"}} {}", n.load(Relaxed));
    }
    header(
        &mut out,
        "hakv_lb_in_flight",
        "gauge",
        "Client requests in progress.",
    );
    let _ = writeln!(out, "hakv_lb_in_flight {}", shared.limiter.current());

    let set = shared.pool.load();
    let per_backend: [(&str, &str, &str); 9] = [
        (
            "hakv_lb_backend_requests_total",
            "counter",
            "Attempts sent to the backend (retries included).",
        ),
        (
            "hakv_lb_backend_errors_total",
            "counter",
            "Attempts that failed to connect, broke, or got a 5xx.",
        ),
        (
            "hakv_lb_backend_retries_total",
            "counter",
            "Retries sent to the backend.",
        ),
        (
            "hakv_lb_backend_health_transitions_total",
            "counter",
            "Up/down changes decided by health checks.",
        ),
        (
            "hakv_lb_backend_ejections_total",
            "counter",
            "Passive outlier ejections.",
        ),
        (
            "hakv_lb_backend_in_flight",
            "gauge",
            "Requests in progress on the backend.",
        ),
        (
            "hakv_lb_backend_up",
            "gauge",
            "1 when the backend may take new requests.",
        ),
        ("hakv_lb_backend_weight", "gauge", "Configured weight."),
        (
            "hakv_lb_backend_latency_ewma_seconds",
            "gauge",
            "Moving average of the time to response headers.",
        ),
    ];
    for (name, kind, help) in per_backend {
        header(&mut out, name, kind, help);
        for b in &set.backends {
            let s = &b.stats;
            let v = match name {
                "hakv_lb_backend_requests_total" => s.requests.load(Relaxed).to_string(),
                "hakv_lb_backend_errors_total" => s.errors.load(Relaxed).to_string(),
                "hakv_lb_backend_retries_total" => s.retries.load(Relaxed).to_string(),
                "hakv_lb_backend_health_transitions_total" => s.health_transitions.load(Relaxed).to_string(),
                "hakv_lb_backend_ejections_total" => s.ejections.load(Relaxed).to_string(),
                "hakv_lb_backend_in_flight" => b.in_flight().to_string(),
                "hakv_lb_backend_up" => u8::from(b.is_available()).to_string(),
                "hakv_lb_backend_weight" => b.weight().to_string(),
                _ => b.ewma_latency().to_string(),
            };
            let _ = writeln!(out, "{name}{{backend=\"{}\"}} {v}", label(b.addr()));
        }
    }
    let name = "hakv_lb_backend_latency_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Time to response headers, per backend.",
    );
    for b in &set.backends {
        let addr = label(b.addr());
        let mut cumulative = 0;
        for (le, n) in LATENCY_BUCKETS.iter().zip(&b.stats.latency_buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{backend=\"{addr}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let count = b.stats.latency_count.load(Relaxed);
        let sum = b.stats.latency_sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_bucket{{backend=\"{addr}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{backend=\"{addr}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{backend=\"{addr}\"}} {count}");
    }
    out
}
