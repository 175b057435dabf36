//! The forwarding path: pick a backend, send the request over a pooled connection, and on a
//! retryable failure try a different backend within the retry budget and the deadline.

use crate::algorithm::Pick;
use crate::backend::{Backend, InFlight};
use crate::body::{GlobalSlot, Limiter, RequestBody, ResponseBody};
use crate::clock::{Clock, RandomSource};
use crate::config::{BalancerConfig, MAX_ATTEMPTS, ms};
use crate::error::ProxyError;
use crate::headers::{ClientAddr, add_forwarded, strip_hop_by_hop};
use crate::leader::{LeaderTracker, is_write};
use crate::outlier::OutlierDetector;
use crate::pool::{BackendSet, Pool};
use crate::retry::{Failure, RetryBudget, backoff};
use bytes::Bytes;
use hakv_api::{REQUEST_ID, RequestIds};
use http::uri::{Parts, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

/// Response bodies of known length up to this size are read whole before answering; larger or
/// unsized ones stream.
const SMALL_BODY_BYTES: u64 = 16 * 1024;

/// Balancer-wide counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    /// Requests placed while no backend was available (see `BackendSet::in_panic`).
    pub panic_requests: AtomicU64,
    /// Answers the balancer made itself, by `ProxyError::code` (see `metrics::ERROR_CODES`).
    pub errors: [AtomicU64; 7],
}

/// Everything the request path needs, shared by all connections.
pub struct Shared {
    pub config: BalancerConfig,
    pub pool: Arc<Pool>,
    pub client: Client<hakv_tls::Connector, RequestBody>,
    /// Plain or TLS towards the backends (the proxy client above was built with it).
    pub transport: crate::transport::BackendTransport,
    /// The proxy listener's certificate, when it serves https.
    pub listener_tls: Option<Arc<hakv_tls::ServerTls>>,
    pub budget: RetryBudget,
    pub outlier: OutlierDetector,
    pub limiter: Arc<Limiter>,
    pub leader: Option<Arc<LeaderTracker>>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn RandomSource>,
    pub counters: Counters,
    /// Ids of requests that come without one (`X-Request-Id`).
    pub request_ids: RequestIds,
    pub(crate) attempt_timeout: Duration,
    pub(crate) total_timeout: Duration,
    pub(crate) body_idle_timeout: Duration,
    pub(crate) backoff_base: Duration,
}

/// A request body ready for one or more attempts.
enum Prepared {
    /// Buffered (possibly empty): every attempt sends a cheap clone.
    Replayable(Bytes),
    /// Too large to buffer: streamed to the first attempt only.
    Stream(Option<Incoming>),
}

/// The key of `/data/{key}`, for key-hash: percent-decoded as hakv decodes it, so `/data/a%2Fb`
/// and `/data/a/b` (the same key to the backend) land on the same backend. Borrowed unless
/// the path has a `%` escape.
#[inline]
pub fn key_of(path: &str) -> Option<Cow<'_, [u8]>> {
    path.strip_prefix("/data/")
        .filter(|k| !k.is_empty())
        // The server's decoding; a path it would refuse hashes as it is.
        .map(|k| match hakv_api::decode_key(k) {
            Ok(Cow::Borrowed(key)) => Cow::Borrowed(key.as_bytes()),
            Ok(Cow::Owned(key)) => Cow::Owned(key.into_bytes()),
            Err(_) => Cow::Borrowed(k.as_bytes()),
        })
}

impl Shared {
    /// Serves one client request by forwarding it; never fails (errors become JSON answers).
    /// The request's id (`X-Request-Id`, made here when the client sent none) goes to the
    /// backend and back to the client, and names the request in the log line of an answer
    /// the balancer makes itself.
    pub async fn forward(&self, mut req: Request<Incoming>, client: &ClientAddr) -> Response<ResponseBody> {
        self.counters.requests.fetch_add(1, Relaxed);
        let request_id = self.request_ids.of(req.headers());
        if req.headers().get(&REQUEST_ID) != Some(&request_id) {
            // Made here (or the client's was unusable): the backend logs the same id.
            req.headers_mut().insert(REQUEST_ID, request_id.clone());
        }
        let mut response = match self.limiter.try_acquire() {
            None => self.error(
                ProxyError::Overloaded {
                    retry_after_secs: self.config.limits.retry_after_secs,
                },
                &request_id,
            ),
            Some(slot) => {
                self.budget.deposit();
                match self.try_forward(req, client).await {
                    Ok((resp, backend_slot)) => self.respond(resp, backend_slot, slot, &request_id).await,
                    Err(e) => self.error(e, &request_id),
                }
            }
        };
        response.headers_mut().insert(REQUEST_ID, request_id);
        response
    }

    /// Passes the backend's answer on, minus hop-by-hop headers.
    async fn respond(
        &self,
        resp: Response<Incoming>,
        backend_slot: InFlight,
        slot: GlobalSlot,
        request_id: &HeaderValue,
    ) -> Response<ResponseBody> {
        let (mut parts, inner) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let small = inner.size_hint().exact().is_some_and(|n| n <= SMALL_BODY_BYTES);
        if !small {
            let body = ResponseBody::streamed(inner, self.body_idle_timeout, backend_slot, slot);
            return Response::from_parts(parts, body);
        }
        // A small body with a known length is usually in the same read as the head: take it
        // now, so it goes out in one write with our head and the backend connection returns to
        // the pool at once, without the cross-task hand-off that streaming costs per frame.
        let body = match tokio::time::timeout(self.attempt_timeout, inner.collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(e)) => {
                let e = format!("the response body broke off: {e}");
                return self.error(ProxyError::Broken(e), request_id);
            }
            Err(_) => {
                let ms = self.attempt_timeout.as_millis() as u64;
                return self.error(ProxyError::AttemptTimeout(ms), request_id);
            }
        };
        drop(backend_slot);
        Response::from_parts(parts, ResponseBody::local(body))
    }

    fn error(&self, e: ProxyError, request_id: &HeaderValue) -> Response<ResponseBody> {
        let i = crate::metrics::ERROR_CODES
            .iter()
            .position(|c| *c == e.code())
            .unwrap_or(0);
        self.counters.errors[i].fetch_add(1, Relaxed);
        // Shedding comes in floods and is counted; every other answer of the balancer's own
        // is worth a line an operator can find by the id the client got.
        if !matches!(e, ProxyError::Overloaded { .. }) {
            tracing::warn!(
                request_id = %String::from_utf8_lossy(request_id.as_bytes()),
                code = e.code(),
                error = %e,
                "request failed"
            );
        }
        e.into_response()
    }

    async fn try_forward(
        &self,
        req: Request<Incoming>,
        client: &ClientAddr,
    ) -> Result<(Response<Incoming>, InFlight), ProxyError> {
        let deadline = Instant::now() + self.total_timeout;
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // Our own server already answered `Expect: 100-continue` when it read the body, and the
        // backend gets the whole body at once.
        parts.headers.remove(http::header::EXPECT);
        add_forwarded(&mut parts.headers, client);
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut body = self.prepare(body, deadline).await?;
        let set = self.pool.load();
        let leader_route = self.leader.as_deref().filter(|_| is_write(&parts.method));
        // Reads kept off the leader (`reads_off_leader`) while another backend can take them.
        let avoided_leader = match &self.leader {
            Some(leader) if self.config.reads_off_leader && leader_route.is_none() => {
                leader.leader_position(&set)
            }
            _ => None,
        };
        let max_attempts = self.config.retry.max_attempts.min(MAX_ATTEMPTS) as usize;
        let mut tried = [usize::MAX; MAX_ATTEMPTS as usize];
        let mut last_error = ProxyError::NoBackend;
        let key = key_of(pq.path());
        let mut counted_panic = false;

        for attempt in 0..max_attempts {
            // Per attempt: a failed attempt may have ejected the last available backend.
            let panic = set.in_panic();
            if panic && !counted_panic {
                counted_panic = true;
                self.counters.panic_requests.fetch_add(1, Relaxed);
            }
            let pick = Pick {
                key: key.as_deref(),
                tried: &tried[..attempt],
                panic,
            };
            let chosen = leader_route
                .and_then(|l| l.leader_index(&set, &pick))
                .or_else(|| {
                    let leader = avoided_leader?;
                    let mut avoid = tried;
                    avoid[attempt] = leader;
                    set.select(&Pick {
                        tried: &avoid[..=attempt],
                        ..pick
                    })
                })
                .or_else(|| set.select(&pick));
            let Some(i) = chosen else { return Err(last_error) };
            tried[attempt] = i;
            let backend = &set.backends[i];
            if attempt > 0 {
                backend.stats.retries.fetch_add(1, Relaxed);
                self.counters.retries.fetch_add(1, Relaxed);
            }
            // A streamed body is never retried, so its headers need no spare copy either.
            let final_try = attempt + 1 == max_attempts || matches!(body, Prepared::Stream(_));
            let headers = if final_try {
                // The last possible attempt takes the headers; earlier ones keep them.
                std::mem::take(&mut parts.headers)
            } else {
                parts.headers.clone()
            };
            let request_body = match &mut body {
                Prepared::Replayable(b) => Either::Left(Full::new(b.clone())),
                Prepared::Stream(s) => match s.take() {
                    Some(s) => Either::Right(s),
                    None => return Err(last_error),
                },
            };
            let scheme = self.transport.scheme();
            let request = backend_request(&scheme, &parts.method, backend, &pq, headers, request_body);
            let slot = backend.start_request();
            let started = Instant::now();
            let attempt_deadline = deadline.min(started + self.attempt_timeout);
            let failure = match tokio::time::timeout_at(attempt_deadline, self.client.request(request)).await
            {
                Err(_) => {
                    self.outlier
                        .on_failure(backend, &set.backends, self.clock.as_ref());
                    return Err(if attempt_deadline == deadline {
                        ProxyError::TotalTimeout(self.total_timeout.as_millis() as u64)
                    } else {
                        ProxyError::AttemptTimeout(self.attempt_timeout.as_millis() as u64)
                    });
                }
                Ok(Ok(resp)) => {
                    backend.record_latency(started.elapsed(), self.clock.now());
                    let status = resp.status();
                    if !status.is_server_error() {
                        self.outlier.on_success(backend);
                        return Ok((resp, slot));
                    }
                    self.outlier
                        .on_failure(backend, &set.backends, self.clock.as_ref());
                    let failure = Failure::from_status(status);
                    if let (Some(Failure::Unavailable), Some(l)) = (failure, leader_route) {
                        l.invalidate();
                    }
                    if !failure.is_some_and(|f| f.retryable(&parts.method))
                        || !self.may_retry(attempt, max_attempts, &body, &set, &tried[..=attempt])
                    {
                        return Ok((resp, slot));
                    }
                    // Retrying: this answer is dropped (its connection is not reused).
                    drop((resp, slot));
                    last_error = ProxyError::Broken(format!("backend {} answered {status}", backend.addr()));
                    continue_after_backoff(self, attempt + 1, deadline).await;
                    continue;
                }
                Ok(Err(e)) => classify(&e, backend),
            };
            drop(slot);
            self.outlier
                .on_failure(backend, &set.backends, self.clock.as_ref());
            if let Some(l) = leader_route {
                l.invalidate();
            }
            last_error = failure.1;
            if !failure.0.retryable(&parts.method)
                || !self.may_retry(attempt, max_attempts, &body, &set, &tried[..=attempt])
            {
                return Err(last_error);
            }
            continue_after_backoff(self, attempt + 1, deadline).await;
        }
        Err(last_error)
    }

    /// Whether one more attempt is allowed: attempts left, a replayable body, another backend to
    /// try, and a token from the retry budget (taken last, so it is spent only on a real retry).
    fn may_retry(
        &self,
        attempt: usize,
        max: usize,
        body: &Prepared,
        set: &BackendSet,
        tried: &[usize],
    ) -> bool {
        // Whether the set is in panic now, after this attempt's failure was recorded.
        let panic = set.in_panic();
        attempt + 1 < max
            && matches!(body, Prepared::Replayable(_))
            && (0..set.backends.len()).any(|i| set.backends[i].is_selectable(panic) && !tried.contains(&i))
            && self.budget.try_withdraw()
    }

    /// Buffers small bodies so they can be replayed; streams the rest.
    async fn prepare(&self, body: Incoming, deadline: Instant) -> Result<Prepared, ProxyError> {
        if body.is_end_stream() {
            return Ok(Prepared::Replayable(Bytes::new()));
        }
        let limit = self.config.retry.max_buffered_body_bytes;
        if body.size_hint().upper().is_none_or(|n| n > limit as u64) {
            return Ok(Prepared::Stream(Some(body)));
        }
        let collected = tokio::time::timeout_at(deadline, Limited::new(body, limit).collect())
            .await
            .map_err(|_| ProxyError::TotalTimeout(self.total_timeout.as_millis() as u64))?
            .map_err(|e| ProxyError::BadRequestBody(e.to_string()))?;
        Ok(Prepared::Replayable(collected.to_bytes()))
    }
}

async fn continue_after_backoff(shared: &Shared, retry: usize, deadline: Instant) {
    let wait = backoff(shared.backoff_base, retry as u32, shared.rng.as_ref());
    if !wait.is_zero() {
        tokio::time::sleep_until(deadline.min(Instant::now() + wait)).await;
    }
}

/// The request for one attempt, HTTP/1.1 to `backend`.
fn backend_request(
    scheme: &Scheme,
    method: &http::Method,
    backend: &Backend,
    pq: &PathAndQuery,
    headers: http::HeaderMap,
    body: RequestBody,
) -> Request<RequestBody> {
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = backend_uri(scheme, backend, pq);
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    request
}

/// `http[s]://{backend}{path?query}` without formatting a string.
#[inline]
fn backend_uri(scheme: &Scheme, backend: &Backend, pq: &PathAndQuery) -> Uri {
    let mut parts = Parts::default();
    parts.scheme = Some(scheme.clone());
    parts.authority = Some(backend.authority().clone());
    parts.path_and_query = Some(pq.clone());
    Uri::from_parts(parts).expect("scheme, authority and path make a valid URI")
}

/// Sorts a client error into what retrying needs to know, with a message for the client.
fn classify(e: &hyper_util::client::legacy::Error, backend: &Backend) -> (Failure, ProxyError) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut refused = false;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = s.source();
    }
    let addr = backend.addr();
    if refused {
        (
            Failure::Refused,
            ProxyError::Unreachable(format!("{addr} refused the connection")),
        )
    } else if e.is_connect() {
        (Failure::Connect, ProxyError::Unreachable(format!("{addr}: {e}")))
    } else {
        (
            Failure::Broken,
            ProxyError::Broken(format!("{addr}: {}", error_chain(e))),
        )
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Millisecond settings as durations, computed once.
pub(crate) fn timeouts(config: &BalancerConfig) -> (Duration, Duration, Duration) {
    (
        ms(config.timeouts.attempt_ms),
        ms(config.timeouts.total_ms),
        ms(config.retry.backoff_base_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_rest_of_the_data_path_percent_decoded() {
        assert_eq!(key_of("/data/user/42").as_deref(), Some(&b"user/42"[..]));
        assert!(matches!(key_of("/data/user/42"), Some(Cow::Borrowed(_))));
        assert_eq!(key_of("/data/user%2F42"), key_of("/data/user/42"));
        assert_eq!(key_of("/data/caf%C3%A9").as_deref(), Some("café".as_bytes()));
        assert_eq!(key_of("/data/"), None);
        assert_eq!(key_of("/health"), None);
    }
}
