//! The balancer's own endpoints: `GET /lb/status`, `GET /metrics`, the console (`GET /ui`),
//! and runtime changes to the backend set (`POST /lb/backends`, `PATCH|DELETE /lb/backends/{addr}`,
//! `POST /lb/backends/{addr}/drain`).

use crate::body::ResponseBody;
use crate::config::BackendSpec;
use crate::error::json_response;
use crate::pool::PoolError;
use crate::proxy::Shared;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

/// Paths the balancer answers itself instead of forwarding.
#[inline]
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with("/lb/") || path == "/metrics" || crate::console::is_console_path(path)
}

#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("bad request body: {0}")]
    BadBody(String),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("invalid backend: {0}")]
    BadSpec(#[from] crate::config::ConfigError),
    #[error("no such endpoint: {0} {1}")]
    NotFound(Method, String),
    #[error("{0} is not allowed here; allowed: {1}")]
    MethodNotAllowed(Method, &'static str),
    #[error("admin changes need `Authorization: Bearer <admin token>`")]
    Unauthorized,
}

impl AdminError {
    fn into_response(self) -> Response<ResponseBody> {
        let (status, code) = match &self {
            Self::BadBody(_) | Self::BadSpec(_) | Self::Pool(PoolError::BadWeight(_)) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            Self::Pool(PoolError::Duplicate(_)) => (StatusCode::CONFLICT, "backend_exists"),
            Self::Pool(PoolError::Full) => (StatusCode::CONFLICT, "too_many_backends"),
            Self::Pool(PoolError::Unknown(_)) => (StatusCode::NOT_FOUND, "unknown_backend"),
            Self::NotFound(..) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(..) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        };
        let mut resp = json_response(status, &json!({ "error": self.to_string(), "code": code }));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Self::MethodNotAllowed(_, allowed) = &self {
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        }
        resp
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBackend {
    addr: String,
    #[serde(default = "one", deserialize_with = "weight")]
    weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBackend {
    #[serde(default, deserialize_with = "optional_weight")]
    weight: Option<u32>,
    draining: Option<bool>,
}

/// A weight: a whole number, written as an integer or as a float (`2.0`), as the members'
/// API takes whole numbers; its range is checked where the backend is changed.
fn weight<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    hakv_api::whole_number(&value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a weight (a whole number)")))
}

fn optional_weight<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => weight(value).map(Some).map_err(serde::de::Error::custom),
    }
}

/// The balancer's own endpoints, by path.
enum Endpoint {
    Metrics,
    Console,
    Status,
    Backends,
    /// `/lb/backends/{addr}`, the address percent-decoded.
    Backend(String),
    /// `/lb/backends/{addr}/drain`.
    Drain(String),
}

impl Endpoint {
    /// The endpoint `path` names, if any.
    fn of(path: &str) -> Option<Endpoint> {
        match path {
            "/metrics" => return Some(Endpoint::Metrics),
            "/lb/status" => return Some(Endpoint::Status),
            "/lb/backends" => return Some(Endpoint::Backends),
            _ if crate::console::is_console_path(path) => return Some(Endpoint::Console),
            _ => {}
        }
        let rest = path.strip_prefix("/lb/backends/")?;
        // One path segment names the backend: an address has no `/`, and clients encode its
        // `:`, `[` and `]` (`127.0.0.1%3A7379`).
        let (addr, drain) = match rest.strip_suffix("/drain") {
            Some(addr) => (addr, true),
            None => (rest, false),
        };
        if addr.contains('/') {
            return None;
        }
        let addr = hakv_api::decode_key(addr).ok()?.into_owned();
        Some(if drain {
            Endpoint::Drain(addr)
        } else {
            Endpoint::Backend(addr)
        })
    }

    /// The methods the endpoint answers, as an `Allow` header says them.
    fn allowed(&self) -> &'static str {
        match self {
            Endpoint::Metrics | Endpoint::Status => "GET",
            Endpoint::Console => "GET, HEAD",
            Endpoint::Backends | Endpoint::Drain(_) => "POST",
            Endpoint::Backend(_) => "PATCH, DELETE",
        }
    }
}

/// The address a backend is kept under, for the one a request names (as written when it is
/// no address at all: then no backend has it).
fn backend_key(addr: &str) -> String {
    BackendSpec::canonical_addr(addr).unwrap_or_else(|_| addr.to_owned())
}

pub async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<ResponseBody> {
    match route(shared, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn route(shared: &Shared, req: Request<Incoming>) -> Result<Response<ResponseBody>, AdminError> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if let Some(token) = &shared.config.admin_token
        && method != Method::GET
        && method != Method::HEAD
        && !hakv_api::bearer_matches(
            req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()),
            token,
        )
    {
        return Err(AdminError::Unauthorized);
    }
    let Some(endpoint) = Endpoint::of(&path) else {
        return Err(AdminError::NotFound(method, path));
    };
    match (&method, endpoint) {
        (&Method::GET, Endpoint::Metrics) => {
            let mut resp = Response::new(ResponseBody::local(crate::metrics::render(shared)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(resp)
        }
        (&Method::GET | &Method::HEAD, Endpoint::Console) => {
            crate::console::asset(&path).ok_or(AdminError::NotFound(method, path))
        }
        (&Method::GET, Endpoint::Status) => Ok(json_response(StatusCode::OK, &status(shared))),
        (&Method::POST, Endpoint::Backends) => {
            let add: AddBackend = read_json(req).await?;
            let spec = BackendSpec::new(&add.addr, add.weight)?;
            shared.pool.add(&spec)?;
            tracing::info!(backend = %spec, "backend added");
            Ok(json_response(
                StatusCode::CREATED,
                &json!({ "added": spec.authority.as_str() }),
            ))
        }
        (&Method::DELETE, Endpoint::Backend(addr)) => {
            let addr = backend_key(&addr);
            shared.pool.remove(&addr)?;
            tracing::info!(backend = addr, "backend removed");
            Ok(json_response(StatusCode::OK, &json!({ "removed": addr })))
        }
        (&Method::PATCH, Endpoint::Backend(addr)) => {
            let addr = backend_key(&addr);
            let update: UpdateBackend = read_json(req).await?;
            shared.pool.update(&addr, update.weight, update.draining)?;
            tracing::info!(backend = addr, weight = ?update.weight, draining = ?update.draining, "backend updated");
            Ok(json_response(StatusCode::OK, &json!({ "updated": addr })))
        }
        (&Method::POST, Endpoint::Drain(addr)) => {
            let addr = backend_key(&addr);
            shared.pool.update(&addr, None, Some(true))?;
            tracing::info!(backend = addr, "backend draining");
            Ok(json_response(StatusCode::OK, &json!({ "draining": addr })))
        }
        (_, endpoint) => Err(AdminError::MethodNotAllowed(method, endpoint.allowed())),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, AdminError> {
    let body = Limited::new(req.into_body(), 64 << 10)
        .collect()
        .await
        .map_err(|e| AdminError::BadBody(e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| AdminError::BadBody(e.to_string()))
}

/// The `/lb/status` document.
pub fn status(shared: &Shared) -> serde_json::Value {
    let set = shared.pool.load();
    let backends: Vec<_> = set
        .backends
        .iter()
        .map(|b| {
            json!({
                "addr": b.addr(),
                "weight": b.weight(),
                "healthy": b.is_healthy(),
                "ejected": b.is_ejected(),
                "draining": b.is_draining(),
                "available": b.is_available(),
                "in_flight": b.in_flight(),
                "ejections": b.ejections(),
                "ewma_latency_ms": b.ewma_latency() * 1e3,
                "requests": b.requests(),
                "errors": b.errors(),
                "retries": b.stats.retries.load(std::sync::atomic::Ordering::Relaxed),
            })
        })
        .collect();
    json!({
        "algorithm": set.algorithm.name(),
        "leader": shared.leader.as_ref().and_then(|l| l.leader()),
        "in_flight": shared.limiter.current(),
        "requests": shared.counters.requests.load(std::sync::atomic::Ordering::Relaxed),
        "retries": shared.counters.retries.load(std::sync::atomic::Ordering::Relaxed),
        "retry_budget_exhausted": shared.budget.exhausted(),
        "panic": set.in_panic(),
        "panic_requests": shared.counters.panic_requests.load(std::sync::atomic::Ordering::Relaxed),
        "backends": backends,
    })
}
