//! Accepting client connections and serving them with hyper: connection limit, per-connection
//! client address, admin routing, background tasks (health, leader) and graceful shutdown.

use crate::admin::{self, is_admin_path};
use crate::body::{Limiter, ResponseBody};
use crate::clock::{Clock, RandomSource, SplitMix64, SystemClock};
use crate::config::{BalancerConfig, ConfigError, ms};
use crate::error::json_response;
use crate::headers::ClientAddr;
use crate::health::HealthChecker;
use crate::leader::LeaderTracker;
use crate::outlier::OutlierDetector;
use crate::pool::Pool;
use crate::proxy::{Counters, Shared, timeouts};
use crate::retry::RetryBudget;
use crate::transport::BackendTransport;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("balancer task failed: {0}")]
    Task(String),
}

/// Which requests a listener answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards everything: the proxy port serves only proxied traffic (`/lb/*`, `/metrics` and `/ui`
    /// included, which go to a backend like any path).
    Proxy,
    /// Only `/lb/*`, `/metrics` and the console `/ui` (the admin listener).
    AdminOnly,
}

/// A configured balancer; cheap to clone (all clones share state).
#[derive(Clone)]
pub struct Balancer {
    shared: Arc<Shared>,
}

impl Balancer {
    pub fn new(config: BalancerConfig) -> Result<Self, ConfigError> {
        let rng: Arc<dyn RandomSource> = if config.seed == 0 {
            Arc::new(SplitMix64::from_entropy())
        } else {
            Arc::new(SplitMix64::new(config.seed))
        };
        Self::with_clock_and_rng(config, Arc::new(SystemClock::default()), rng)
    }

    /// As `new`, with injected time and randomness (for deterministic tests).
    pub fn with_clock_and_rng(
        config: BalancerConfig,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let pool = Arc::new(Pool::new(
            &config.backends,
            config.algorithm,
            Arc::clone(&rng),
            Arc::clone(&clock),
            config.hash_load_factor,
        ));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(ms(config.timeouts.connect_ms)));
        let transport = BackendTransport::load(&config.tls)?;
        let listener_tls = match config.tls.listener_files() {
            Some(files) => Some(Arc::new(hakv_tls::ServerTls::load(files)?)),
            None => None,
        };
        let connector = transport.connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(ms(config.timeouts.backend_idle_ms))
            .pool_max_idle_per_host(config.limits.max_idle_per_backend)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let (attempt_timeout, total_timeout, backoff_base) = timeouts(&config);
        let shared = Shared {
            pool,
            client,
            transport,
            listener_tls,
            budget: RetryBudget::new(
                config.retry.budget_ratio,
                config.retry.budget_max_tokens,
                config.retry.budget_initial_tokens,
            ),
            outlier: OutlierDetector::new(config.outlier.clone()),
            limiter: Limiter::new(config.limits.max_in_flight),
            leader: config.leader_aware.then(|| Arc::new(LeaderTracker::default())),
            clock,
            rng,
            counters: Counters::default(),
            request_ids: hakv_api::RequestIds::default(),
            attempt_timeout,
            total_timeout,
            body_idle_timeout: ms(config.timeouts.body_idle_ms),
            backoff_base,
            config,
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// Applies a new configuration's backend set and algorithm without a restart, and re-reads
    /// the TLS certificates (same files). Backends that stay keep their health and counters.
    /// Other settings need a restart (logged).
    pub fn reload(&self, config: &BalancerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let old = &self.shared.config;
        if let Some(tls) = &self.shared.listener_tls {
            tls.reload()?;
        }
        self.shared.transport.reload()?;
        let applied_now = BalancerConfig {
            backends: old.backends.clone(),
            algorithm: old.algorithm,
            ..config.clone()
        };
        if applied_now != *old {
            tracing::warn!(
                "reload: only the backends, their weights and the algorithm change without a restart; \
                 the other changed settings wait for one"
            );
        }
        self.shared.pool.replace(&config.backends, config.algorithm);
        tracing::info!(
            backends = config.backends.len(),
            algorithm = config.algorithm.name(),
            "configuration reloaded"
        );
        Ok(())
    }

    /// The `/lb/status` document.
    pub fn status(&self) -> serde_json::Value {
        admin::status(&self.shared)
    }

    pub fn config(&self) -> &BalancerConfig {
        &self.shared.config
    }

    /// Binds the configured addresses and serves in a background task.
    pub async fn spawn(self) -> Result<BalancerHandle, ServeError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        let listener = bind(self.shared.config.listen).await?;
        let admin = bind(self.shared.config.admin_addr()).await?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: self.shared.config.listen,
            source,
        })?;
        let admin_addr = admin.local_addr().map_err(|source| ServeError::Bind {
            addr: self.shared.config.admin_addr(),
            source,
        })?;
        let (tx, rx) = watch::channel(false);
        let balancer = self.clone();
        let task = tokio::spawn(self.serve(listener, admin, rx));
        Ok(BalancerHandle {
            addr,
            admin_addr,
            balancer,
            shutdown: tx,
            task,
        })
    }

    /// Serves until `shutdown` turns true, then stops accepting, lets open connections finish
    /// their current request (up to `drain_ms`), and stops the background tasks.
    pub async fn serve(
        self,
        listener: TcpListener,
        admin_listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ServeError> {
        let shared = &self.shared;
        let (stop_tasks, tasks_rx) = watch::channel(false);
        tokio::spawn(
            HealthChecker {
                pool: Arc::clone(&shared.pool),
                config: shared.config.health.clone(),
                outlier: shared.outlier.clone(),
                clock: Arc::clone(&shared.clock),
                transport: shared.transport.clone(),
            }
            .run(tasks_rx.clone()),
        );
        {
            let (pool, timeout) = (Arc::clone(&shared.pool), ms(shared.config.health.timeout_ms));
            let transport = shared.transport.clone();
            tokio::spawn(
                async move { crate::independent::warn_if_independent(&pool, timeout, &transport).await },
            );
        }
        if let Some(leader) = &shared.leader {
            tokio::spawn(Arc::clone(leader).run(
                shared.transport.clone(),
                Arc::clone(&shared.pool),
                shared.config.leader_refresh_ms,
                shared.config.health.timeout_ms,
                tasks_rx.clone(),
            ));
        }
        let max_conns = shared.config.limits.max_connections;
        let permits = Arc::new(Semaphore::new(max_conns));
        let admin_task = tokio::spawn(accept_loop(
            Arc::clone(shared),
            admin_listener,
            Mode::AdminOnly,
            Arc::new(Semaphore::new(64)),
            shutdown.clone(),
        ));
        tokio::select! {
            _ = accept_loop(Arc::clone(shared), listener, Mode::Proxy, Arc::clone(&permits), shutdown.clone()) => {}
            _ = stopped(&mut shutdown) => {}
        }
        // Every connection holds one permit: all permits back means all connections closed.
        let drain = ms(shared.config.timeouts.drain_ms);
        if tokio::time::timeout(drain, permits.acquire_many(max_conns as u32))
            .await
            .is_err()
        {
            tracing::warn!("drain timeout: closing the remaining connections");
        }
        admin_task.abort();
        let _ = stop_tasks.send(true);
        Ok(())
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mode: Mode,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Over the connection limit, new clients wait in the kernel's accept queue.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let mut shutdown = shutdown.clone();
        let acceptor = match mode {
            Mode::Proxy => shared.listener_tls.as_ref().map(|tls| tls.acceptor()),
            Mode::AdminOnly => None,
        };
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = acceptor else {
                return serve_connection(shared, TokioIo::new(stream), peer, mode, &mut shutdown).await;
            };
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, hakv_tls::accept(acceptor, stream)).await {
                Ok(Ok(stream)) => {
                    serve_connection(shared, TokioIo::new(stream), peer, mode, &mut shutdown).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake not finished in time"),
            }
        });
    }
}

/// A client must finish its TLS handshake within this time.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one client connection, plain or TLS, until it closes or the balancer stops.
async fn serve_connection<I>(
    shared: Arc<Shared>,
    io: I,
    peer: SocketAddr,
    mode: Mode,
    shutdown: &mut watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    {
        {
            let client = Arc::new(ClientAddr::new(peer));
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                let client = Arc::clone(&client);
                async move { Ok::<_, Infallible>(dispatch(&shared, req, &client, mode).await) }
            });
            // hyper's own answers to refused request heads get a JSON body, as the
            // balancer's other errors do.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .keep_alive(true)
                .serve_connection(hakv_api::JsonHeadErrors::new(io), service);
            tokio::pin!(conn);
            tokio::select! {
                biased;
                _ = conn.as_mut() => {}
                _ = stopped(shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        }
    }
}

async fn dispatch(
    shared: &Shared,
    req: Request<Incoming>,
    client: &ClientAddr,
    mode: Mode,
) -> Response<ResponseBody> {
    match mode {
        Mode::AdminOnly if is_admin_path(req.uri().path()) => admin::handle(shared, req).await,
        Mode::Proxy => shared.forward(req, client).await,
        Mode::AdminOnly => json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "the admin listener serves only /lb/*, /metrics and /ui", "code": "not_found"}),
        ),
    }
}

/// Resolves once `shutdown` is true (or its sender is gone); the guard `wait_for` returns is
/// dropped here so callers can hold this across awaits in `Send` tasks.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// A balancer serving in the background.
pub struct BalancerHandle {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub balancer: Balancer,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl BalancerHandle {
    /// Stops accepting, drains, and waits for the balancer to finish.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.shutdown.send(true);
        self.task.await.map_err(|e| ServeError::Task(e.to_string()))?
    }
}
