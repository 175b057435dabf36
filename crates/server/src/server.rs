//! Serving the router on a listener: a bounded number of connections, header-read timeouts,
//! TLS when configured (certificates reloaded on SIGHUP), and the shutdown order: stop
//! accepting, drain in-flight requests (bounded by the grace period), stop background tasks,
//! then stop the writer, which flushes the store.

use crate::node::{Node, NodeError, Stoppable};
use crate::tls::NodeTls;
use crate::{ServeConfig, app, expiry_task, observability, runtime_lag};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How often expired keys are purged.
const PURGE_EVERY: Duration = Duration::from_secs(1);
/// A client must finish its TLS handshake, and then send its request headers, within this
/// time each (slowloris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most headers in one request.
const MAX_HEADERS: usize = 100;
/// Largest request head (and per-connection read buffer), in bytes.
const MAX_HEAD_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("cannot handle SIGHUP: {0}")]
    Signal(#[source] std::io::Error),
    #[error("the writer thread panicked; the store may not have been flushed")]
    WriterPanicked,
}

/// Serves `config` on `listener` until `shutdown` completes, then shuts down in order.
/// `opened` is called once the store is open, before the first connection is served.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
    opened: impl FnOnce(),
) -> Result<(), ServeError> {
    observability::install();
    let grace = config.shutdown_grace;
    let connection_slots = Arc::new(Semaphore::new(config.max_connections));
    let tls = NodeTls::load(&config).map_err(NodeError::from)?;
    // Installed before anyone is told this node runs: SIGHUP's default action ends a process.
    let hangup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(ServeError::Signal)?;
    let node = Node::open(config, tls.peers.clone()).await?;
    // The store is open (or opening it failed above, and nobody was told this node runs).
    opened();
    let router = app(node.clone());

    let mut background = JoinSet::new();
    background.spawn(expiry_task::purge_loop(node.clone(), PURGE_EVERY));
    background.spawn(observability::upkeep_loop());
    background.spawn(runtime_lag::probe_loop());
    background.spawn(reload_on_hangup(hangup, tls.clone()));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
    // A request head is at most MAX_HEADERS headers and MAX_HEAD_BYTES (hyper answers 431
    // beyond): every connection's read buffer is bounded, 4096 connections included.
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    let http = Arc::new(http);

    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = connection_slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (router, http, stop_rx) = (router.clone(), http.clone(), stop_rx.clone());
        let acceptor = tls.listener.as_ref().map(|tls| tls.acceptor());
        connections.spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                return serve_connection(&http, TokioIo::new(stream), router, stop_rx, peer).await;
            };
            match tokio::time::timeout(HEADER_READ_TIMEOUT, hakv_tls::accept(acceptor, stream)).await {
                Ok(Ok(stream)) => serve_connection(&http, TokioIo::new(stream), router, stop_rx, peer).await,
                Ok(Err(err)) => {
                    metrics::counter!("hakv_tls_handshake_failures_total").increment(1);
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                }
                Err(_) => {
                    metrics::counter!("hakv_tls_handshake_failures_total").increment(1);
                    tracing::debug!(%peer, "TLS handshake not finished in time");
                }
            }
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }

    tracing::info!("shutting down: no new connections; draining in-flight requests");
    drop(listener);
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "grace period over; closing the remaining connections"
        );
        connections.shutdown().await;
    }
    background.shutdown().await;
    drop(router);

    // Every `Writer` clone lives in the node; once the last reference is gone the writer
    // thread drains its queue, flushes the store and exits. A Raft member stops its peer
    // traffic and log, then flushes the state machine.
    let stoppable = node.take_stoppable();
    drop(node);
    match stoppable {
        Stoppable::WriterThread(Some(thread)) => {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|_| ServeError::WriterPanicked)?
                .map_err(|_| ServeError::WriterPanicked)?;
        }
        Stoppable::WriterThread(None) => {}
        Stoppable::Cluster(cluster) => match Arc::try_unwrap(cluster) {
            Ok(cluster) => cluster.shutdown().await,
            Err(_) => tracing::warn!(
                "the Raft member is still referenced; its log is durable, skipping its shutdown"
            ),
        },
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// Serves one connection (plain or TLS) until it ends, or until shutdown, when the request
/// in progress is finished and keep-alive ends.
async fn serve_connection<I>(
    http: &auto::Builder<TokioExecutor>,
    io: I,
    router: Router,
    mut stop_rx: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // hyper's own answers to refused request heads get a JSON body like every other error.
    let io = hakv_api::JsonHeadErrors::new(io);
    let connection = http.serve_connection_with_upgrades(io, TowerToHyperService::new(router));
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        }
        _ = stop_rx.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Re-reads the TLS certificates on every SIGHUP.
async fn reload_on_hangup(mut hangup: tokio::signal::unix::Signal, tls: NodeTls) {
    while hangup.recv().await.is_some() {
        tls.reload();
    }
}
