//! Heartbeats: every `interval`, probe each backend's `/ready`; `fall` failures in a row mark it
//! down, `rise` successes in a row mark it up again. A good probe also ends an outlier ejection
//! whose time is up.

use crate::backend::Backend;
use crate::clock::Clock;
use crate::config::{HealthConfig, ms};
use crate::outlier::OutlierDetector;
use crate::pool::Pool;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::watch;

/// What one probe changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Up,
    Down,
}

/// Applies one probe result to a backend's rise/fall counters.
pub fn record_probe(b: &Backend, ok: bool, rise: u32, fall: u32) -> Option<Transition> {
    let s = &b.state;
    if ok {
        s.probe_failures.store(0, Relaxed);
        let n = s.probe_successes.fetch_add(1, Relaxed).saturating_add(1);
        if !s.healthy.load(Relaxed) && n >= rise {
            s.healthy.store(true, Relaxed);
            b.stats.health_transitions.fetch_add(1, Relaxed);
            return Some(Transition::Up);
        }
    } else {
        s.probe_successes.store(0, Relaxed);
        let n = s.probe_failures.fetch_add(1, Relaxed).saturating_add(1);
        if s.healthy.load(Relaxed) && n >= fall {
            s.healthy.store(false, Relaxed);
            b.stats.health_transitions.fetch_add(1, Relaxed);
            return Some(Transition::Down);
        }
    }
    None
}

pub struct HealthChecker {
    pub pool: Arc<Pool>,
    pub config: HealthConfig,
    pub outlier: OutlierDetector,
    pub clock: Arc<dyn Clock>,
    pub transport: crate::transport::BackendTransport,
}

impl HealthChecker {
    /// Probes until `shutdown` turns true. Probes of one round run concurrently and each is
    /// bounded by the timeout (≤ interval), so a round never outlasts the interval by much.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(ms(self.config.timeout_ms)));
        // No pooling: each probe opens a connection, so a probe also checks that the backend
        // still accepts connections, not just that an old one is alive.
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(self.transport.connector(connector));
        let mut tick = tokio::time::interval(ms(self.config.interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut in_panic = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let set = self.pool.load();
            let probes = set.backends.iter().map(|b| self.probe(&client, b));
            let results = futures_util::future::join_all(probes).await;
            for (b, ok) in set.backends.iter().zip(results) {
                match record_probe(b, ok, self.config.rise, self.config.fall) {
                    Some(Transition::Down) => tracing::warn!(backend = b.addr(), "backend down"),
                    Some(Transition::Up) => tracing::info!(backend = b.addr(), "backend up"),
                    None => {}
                }
                if ok {
                    self.outlier.maybe_return(b, self.clock.as_ref());
                }
            }
            // Said once per change, next to the transitions that caused it.
            if set.in_panic() != in_panic {
                in_panic = !in_panic;
                if in_panic {
                    tracing::warn!(
                        "no backend available: panic mode, requests go to every backend neither ejected nor draining"
                    );
                } else {
                    tracing::info!("a backend is available again: panic mode over");
                }
            }
        }
    }

    async fn probe(&self, client: &Client<hakv_tls::Connector, Empty<Bytes>>, b: &Backend) -> bool {
        let uri = match http::Uri::builder()
            .scheme(self.transport.scheme())
            .authority(b.authority().clone())
            .path_and_query(self.config.path.as_str())
            .build()
        {
            Ok(u) => u,
            Err(_) => return false,
        };
        let request = client.get(uri);
        match tokio::time::timeout(ms(self.config.timeout_ms), request).await {
            Ok(Ok(resp)) => resp.status().is_success(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::backends;

    #[test]
    fn down_after_fall_failures_and_up_after_rise_successes() {
        let b = &backends(&[1])[0];
        assert_eq!(record_probe(b, false, 2, 3), None);
        assert_eq!(record_probe(b, false, 2, 3), None);
        assert_eq!(record_probe(b, false, 2, 3), Some(Transition::Down));
        assert!(!b.is_available());
        assert_eq!(record_probe(b, false, 2, 3), None);
        assert_eq!(record_probe(b, true, 2, 3), None);
        assert_eq!(record_probe(b, true, 2, 3), Some(Transition::Up));
        assert!(b.is_available());
    }

    #[test]
    fn a_single_blip_does_not_flap() {
        let b = &backends(&[1])[0];
        for _ in 0..5 {
            assert_eq!(record_probe(b, false, 2, 3), None);
            assert_eq!(record_probe(b, false, 2, 3), None);
            assert_eq!(record_probe(b, true, 2, 3), None);
        }
        assert!(b.is_healthy());
    }
}
