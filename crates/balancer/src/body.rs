//! Body types of the hot path: what the balancer answers with (a backend's streamed body, or a
//! small body of its own) and what it sends to a backend (buffered for replay, or streamed).

use crate::backend::InFlight;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// What a response body can fail with: the backend's stream broke, or it went idle.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed backend body sent nothing for `timeouts.body_idle_ms`.
#[derive(Debug, thiserror::Error)]
#[error("the backend sent no body data for {0:?}; response cut off")]
pub struct BodyIdle(Duration);

/// Sent to a backend: a buffered (replayable) body or the client's stream.
pub type RequestBody = Either<Full<Bytes>, Incoming>;

/// Answered to a client. A backend body carries the slots it occupies, so the backend's
/// in-flight count and the global limit are released when the body is done, not when the
/// headers arrive. It also carries an idle timer: a backend that stops sending halfway would
/// otherwise hold the client, the slots and the connection for as long as the client waits.
#[derive(Debug)]
pub enum ResponseBody {
    Backend {
        inner: Incoming,
        /// Runs only while we wait on the backend: a client that reads slowly stops hyper from
        /// asking for the next frame, and that time is not the backend's silence.
        idle: Pin<Box<Sleep>>,
        idle_limit: Duration,
        waiting: bool,
        backend: InFlight,
        _global: Option<GlobalSlot>,
    },
    Local(Full<Bytes>),
}

impl ResponseBody {
    pub fn local(bytes: impl Into<Bytes>) -> Self {
        Self::Local(Full::new(bytes.into()))
    }

    /// A backend's body, streamed; cut off once no data has come for `idle_limit`.
    pub fn streamed(inner: Incoming, idle_limit: Duration, backend: InFlight, global: GlobalSlot) -> Self {
        Self::Backend {
            inner,
            idle: Box::pin(tokio::time::sleep(idle_limit)),
            idle_limit,
            waiting: false,
            backend,
            _global: Some(global),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Backend {
                inner,
                idle,
                idle_limit,
                waiting,
                backend,
                ..
            } => match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(frame) => {
                    *waiting = false;
                    Poll::Ready(frame.map(|r| r.map_err(BodyError::from)))
                }
                Poll::Pending => {
                    if !*waiting {
                        *waiting = true;
                        idle.as_mut().reset(Instant::now() + *idle_limit);
                    }
                    match idle.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            tracing::warn!(backend = backend.backend().addr(), "response body idle; cut off");
                            Poll::Ready(Some(Err(BodyIdle(*idle_limit).into())))
                        }
                        Poll::Pending => Poll::Pending,
                    }
                }
            },
            Self::Local(full) => Pin::new(full).poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Backend { inner, .. } => inner.is_end_stream(),
            Self::Local(full) => full.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Backend { inner, .. } => inner.size_hint(),
            Self::Local(full) => full.size_hint(),
        }
    }
}

/// The balancer-wide in-flight limit (load shedding).
#[derive(Debug)]
pub struct Limiter {
    max: usize,
    current: AtomicUsize,
}

impl Limiter {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            current: AtomicUsize::new(0),
        })
    }

    /// A slot, or `None` when `max` requests are already in progress.
    #[inline]
    pub fn try_acquire(self: &Arc<Self>) -> Option<GlobalSlot> {
        let prev = self.current.fetch_add(1, Relaxed);
        if prev >= self.max {
            self.current.fetch_sub(1, Relaxed);
            return None;
        }
        Some(GlobalSlot(Arc::clone(self)))
    }

    pub fn current(&self) -> usize {
        self.current.load(Relaxed)
    }
}

#[derive(Debug)]
pub struct GlobalSlot(Arc<Limiter>);

impl Drop for GlobalSlot {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_sheds_beyond_max_and_frees_on_drop() {
        let l = Limiter::new(2);
        let a = l.try_acquire().unwrap();
        let _b = l.try_acquire().unwrap();
        assert!(l.try_acquire().is_none());
        drop(a);
        assert!(l.try_acquire().is_some());
    }
}
