//! The live backend set: an immutable snapshot (backends + the selector built for them) that the
//! proxy loads lock-free and that changes (admin API, reload) replace whole through `ArcSwap`.

use crate::algorithm::{Algorithm, Pick, SelectionAlgorithm};
use crate::backend::Backend;
use crate::clock::{Clock, RandomSource};
use crate::config::{BackendSpec, MAX_BACKENDS, MAX_WEIGHT};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("no backend `{0}`")]
    Unknown(String),
    #[error("backend `{0}` already exists")]
    Duplicate(String),
    #[error("weight must be 1..={MAX_WEIGHT}, got {0}")]
    BadWeight(u32),
    #[error("the set already has the most backends allowed ({MAX_BACKENDS})")]
    Full,
}

/// One version of the backend set. Never mutated after it is published, except for the atomics
/// inside each `Backend`.
pub struct BackendSet {
    pub backends: Vec<Arc<Backend>>,
    pub algorithm: Algorithm,
    selector: Box<dyn SelectionAlgorithm>,
}

impl BackendSet {
    #[inline]
    pub fn select(&self, pick: &Pick<'_>) -> Option<usize> {
        self.selector.select(&self.backends, pick)
    }

    pub fn find(&self, addr: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.addr() == addr)
    }

    /// No backend is available (each one failing its health checks, ejected or draining).
    /// Refusing everything then helps no one: every member of a hakv cluster reports not ready
    /// for the moment of an election, yet each would take a request and wait for the new
    /// leader. So, like Envoy's panic threshold at its extreme, requests then go to every
    /// backend that is neither ejected nor draining, whatever its health checks say; a dead one
    /// refuses the connection and the request is retried elsewhere as usual, and the outlier
    /// detector soon ejects it.
    pub fn in_panic(&self) -> bool {
        !self.backends.iter().any(|b| b.is_available())
    }
}

pub struct Pool {
    current: ArcSwap<BackendSet>,
    rng: Arc<dyn RandomSource>,
    clock: Arc<dyn Clock>,
    hash_load_factor: f64,
    /// Serialises writers (load, build, store) so two admin calls cannot lose each other's
    /// change; readers never take it.
    edit: Mutex<()>,
}

impl Pool {
    pub fn new(
        specs: &[BackendSpec],
        algorithm: Algorithm,
        rng: Arc<dyn RandomSource>,
        clock: Arc<dyn Clock>,
        hash_load_factor: f64,
    ) -> Self {
        let backends: Vec<_> = specs
            .iter()
            .map(|s| Arc::new(Backend::new(s.authority.clone(), s.weight)))
            .collect();
        let set = build(backends, algorithm, &rng, &clock, hash_load_factor);
        Self {
            current: ArcSwap::from_pointee(set),
            rng,
            clock,
            hash_load_factor,
            edit: Mutex::new(()),
        }
    }

    /// The current snapshot; cheap, lock-free, and stable for as long as it is held.
    #[inline]
    pub fn load(&self) -> Arc<BackendSet> {
        self.current.load_full()
    }

    fn publish(&self, backends: Vec<Arc<Backend>>, algorithm: Algorithm) {
        let set = build(backends, algorithm, &self.rng, &self.clock, self.hash_load_factor);
        self.current.store(Arc::new(set));
    }

    /// Makes the set match `specs` (a reload): backends that stay keep their state and counters.
    pub fn replace(&self, specs: &[BackendSpec], algorithm: Algorithm) {
        let _g = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.load();
        let backends = specs
            .iter()
            .map(|s| match old.find(s.authority.as_str()) {
                Some(i) => {
                    let b = Arc::clone(&old.backends[i]);
                    b.set_weight(s.weight);
                    b
                }
                None => Arc::new(Backend::new(s.authority.clone(), s.weight)),
            })
            .collect();
        self.publish(backends, algorithm);
    }

    pub fn add(&self, spec: &BackendSpec) -> Result<(), PoolError> {
        let _g = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.load();
        if old.find(spec.authority.as_str()).is_some() {
            return Err(PoolError::Duplicate(spec.authority.to_string()));
        }
        if old.backends.len() >= MAX_BACKENDS {
            return Err(PoolError::Full);
        }
        let mut backends = old.backends.clone();
        backends.push(Arc::new(Backend::new(spec.authority.clone(), spec.weight)));
        self.publish(backends, old.algorithm);
        Ok(())
    }

    /// Takes a backend out of the set. Requests already sent to it hold their own reference and
    /// finish normally.
    pub fn remove(&self, addr: &str) -> Result<(), PoolError> {
        let _g = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.load();
        let i = old
            .find(addr)
            .ok_or_else(|| PoolError::Unknown(addr.to_owned()))?;
        let mut backends = old.backends.clone();
        backends.remove(i);
        self.publish(backends, old.algorithm);
        Ok(())
    }

    /// Changes a weight (the selector is rebuilt, as SWRR and the hash ring depend on weights)
    /// and/or the draining flag (no rebuild: selectors read it live).
    pub fn update(&self, addr: &str, weight: Option<u32>, draining: Option<bool>) -> Result<(), PoolError> {
        let _g = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.load();
        let i = old
            .find(addr)
            .ok_or_else(|| PoolError::Unknown(addr.to_owned()))?;
        if let Some(w) = weight
            && !(1..=MAX_WEIGHT).contains(&w)
        {
            return Err(PoolError::BadWeight(w));
        }
        if let Some(d) = draining {
            old.backends[i].set_draining(d);
        }
        if let Some(w) = weight {
            old.backends[i].set_weight(w);
            self.publish(old.backends.clone(), old.algorithm);
        }
        Ok(())
    }
}

fn build(
    backends: Vec<Arc<Backend>>,
    algorithm: Algorithm,
    rng: &Arc<dyn RandomSource>,
    clock: &Arc<dyn Clock>,
    hash_load_factor: f64,
) -> BackendSet {
    let selector = algorithm.build(&backends, Arc::clone(rng), Arc::clone(clock), hash_load_factor);
    BackendSet {
        backends,
        algorithm,
        selector,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{SplitMix64, SystemClock};

    fn pool(specs: &[&str]) -> Pool {
        let specs: Vec<BackendSpec> = specs.iter().map(|s| s.parse().unwrap()).collect();
        Pool::new(
            &specs,
            Algorithm::WeightedRoundRobin,
            Arc::new(SplitMix64::new(1)),
            Arc::new(SystemClock::default()),
            1.25,
        )
    }

    #[test]
    fn admin_changes_publish_a_new_set_and_keep_backend_state() {
        let p = pool(&["127.0.0.1:1", "127.0.0.1:2"]);
        let b1 = Arc::clone(&p.load().backends[0]);
        p.add(&"127.0.0.1:3=4".parse().unwrap()).unwrap();
        assert_eq!(p.load().backends.len(), 3);
        assert!(Arc::ptr_eq(&b1, &p.load().backends[0]));
        assert_eq!(
            p.add(&"127.0.0.1:3".parse().unwrap()),
            Err(PoolError::Duplicate("127.0.0.1:3".into()))
        );
        p.update("127.0.0.1:3", Some(2), Some(true)).unwrap();
        assert_eq!(p.load().backends[2].weight(), 2);
        assert!(!p.load().backends[2].is_available());
        p.remove("127.0.0.1:1").unwrap();
        assert_eq!(
            p.remove("127.0.0.1:1"),
            Err(PoolError::Unknown("127.0.0.1:1".into()))
        );
        assert_eq!(
            p.update("127.0.0.1:2", Some(0), None),
            Err(PoolError::BadWeight(0))
        );
    }

    #[test]
    fn a_held_snapshot_is_unchanged_by_later_edits() {
        let p = pool(&["127.0.0.1:1"]);
        let old = p.load();
        p.replace(
            &["127.0.0.1:1=3".parse().unwrap(), "127.0.0.1:9".parse().unwrap()],
            Algorithm::P2c,
        );
        assert_eq!(old.backends.len(), 1);
        let new = p.load();
        assert_eq!(new.algorithm, Algorithm::P2c);
        assert!(Arc::ptr_eq(&old.backends[0], &new.backends[0]));
        assert_eq!(new.backends[0].weight(), 3);
    }

    #[test]
    fn the_admin_api_cannot_grow_the_set_past_the_limit() {
        let specs: Vec<String> = (1..=MAX_BACKENDS)
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
        let p = pool(&specs);
        assert_eq!(p.add(&"127.0.0.2:1".parse().unwrap()), Err(PoolError::Full));
        p.remove("127.0.0.1:1").unwrap();
        p.add(&"127.0.0.2:1".parse().unwrap()).unwrap();
        assert_eq!(p.load().backends.len(), MAX_BACKENDS);
    }

    #[test]
    fn a_drained_backend_gets_no_new_requests() {
        let p = pool(&["127.0.0.1:1", "127.0.0.1:2"]);
        p.update("127.0.0.1:1", None, Some(true)).unwrap();
        let set = p.load();
        for _ in 0..4 {
            assert_eq!(set.select(&Pick::default()), Some(1));
        }
    }
}
