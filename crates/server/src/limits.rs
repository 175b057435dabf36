//! The per-request envelope: the request id (`X-Request-Id`, echoed in the answer, named in
//! the log line of a 5xx, and passed on with a forwarded write or read), admission against
//! the in-flight limit (shedding with 503 and `Retry-After`), the request timeout, and the
//! request metrics.

use crate::ApiError;
use crate::error::{ServerErrorReason, worth_a_log_line};
use crate::node::Node;
use crate::request_metrics::{ROUTES, record_request, route_index};
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hakv_api::REQUEST_ID;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

/// The client request a task serves, for code far from the envelope.
struct Serving {
    request_id: HeaderValue,
    /// Whether the handler is waiting for the request's body right now.
    reading_body: Cell<bool>,
}

tokio::task_local! {
    static SERVING: Serving;
}

/// The `X-Request-Id` of the client request the calling task serves, for code far from the
/// handler that passes the request on: a follower forwarding a write or a read to its leader.
pub fn current_request_id() -> Option<HeaderValue> {
    SERVING.try_with(|serving| serving.request_id.clone()).ok()
}

/// Runs `read`, the reading of the request's body, marked as such: a request timeout that
/// strikes meanwhile is the client's doing (408: the request never arrived in full, so
/// nothing was done), not the server's (504: a write's outcome unknown).
pub async fn reading_body<F: Future>(read: F) -> F::Output {
    let mark = |on| {
        let _ = SERVING.try_with(|serving| serving.reading_body.set(on));
    };
    mark(true);
    let output = read.await;
    mark(false);
    output
}

pub async fn track_request(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = node.request_ids.of(request.headers());
    let route = route_index(request.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    let method = request.method().clone();
    // Operational endpoints skip admission: an overloaded node must still say so.
    let permit =
        (!is_operational(ROUTES[route])).then(|| InFlight::admit(&node.in_flight, node.config.max_in_flight));
    if route < 2
        && let Some(member) = node.cluster()
    {
        // A key or scan request: snapshot transfers from this node are paced while these come.
        member.raft().client_activity().touch();
    }
    let mut response = if let Some(None) = permit {
        ApiError::Overloaded("in-flight requests").into_response()
    } else {
        let serving = Serving {
            request_id: request_id.clone(),
            reading_body: Cell::new(false),
        };
        let timeout = node.config.request_timeout;
        SERVING
            .scope(serving, async move {
                if ROUTES[route] == "/cluster/members" {
                    // Adding a member waits until it has caught up (bounded by its own catch-up
                    // timeout): cut off at the request timeout, the new member would stay a learner.
                    return next.run(request).await;
                }
                match within(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) if SERVING.with(|serving| serving.reading_body.get()) => {
                        ApiError::RequestTimeout.into_response()
                    }
                    Err(_) => ApiError::Timeout.into_response(),
                }
            })
            .await
    };
    drop(permit);
    record_request(route, &method, response.status(), started.elapsed());
    if let Some(ServerErrorReason(reason)) = response.extensions().get()
        && worth_a_log_line(response.status())
    {
        tracing::warn!(
            request_id = %String::from_utf8_lossy(request_id.as_bytes()),
            %method,
            route = ROUTES[route],
            status = response.status().as_u16(),
            reason = %reason,
            "request failed"
        );
    }
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

/// `future`, cut off after `limit`. The timer is armed only if the first poll leaves the
/// future waiting: most requests (a cached read, a refusal) finish in their first poll, and
/// for them arming and cancelling a timer showed in the profile. The limit therefore counts
/// from the end of the first poll, which is a handler's synchronous start (no timer could cut
/// that short anyway).
async fn within<F: Future>(limit: Duration, future: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut future = std::pin::pin!(future);
    if let Poll::Ready(output) = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
        return Ok(output);
    }
    tokio::time::timeout(limit, future).await
}

/// One admitted request; releases its slot when dropped, also when the client goes away.
struct InFlight<'a>(&'a AtomicUsize);

impl InFlight<'_> {
    fn admit(counter: &AtomicUsize, limit: usize) -> Option<InFlight<'_>> {
        if counter.fetch_add(1, Ordering::AcqRel) < limit {
            Some(InFlight(counter))
        } else {
            counter.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn is_operational(route: &str) -> bool {
    matches!(route, "/health" | "/ready" | "/metrics" | "/cluster")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_future_done_in_its_first_poll_is_answered_even_with_no_time_left() {
        let done = within(Duration::ZERO, async { 7 }).await;
        assert_eq!(done.unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_future_is_cut_off_at_the_limit_and_kept_before_it() {
        let slow = within(Duration::from_secs(2), tokio::time::sleep(Duration::from_secs(3))).await;
        assert!(slow.is_err());
        let in_time = within(Duration::from_secs(2), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "answered"
        })
        .await;
        assert_eq!(in_time.unwrap(), "answered");
    }
}
