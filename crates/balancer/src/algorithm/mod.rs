//! Backend selection: one trait, one module per algorithm, and `Algorithm` (a closed enum of the
//! built-ins) that builds the selector for a backend set.

mod key_hash;
mod least_connections;
mod p2c;
mod round_robin;
mod weighted_round_robin;

pub use key_hash::KeyHash;
pub use least_connections::LeastConnections;
pub use p2c::PowerOfTwoChoices;
pub use round_robin::RoundRobin;
pub use weighted_round_robin::SmoothWeightedRoundRobin;

use crate::backend::Backend;
use crate::clock::{Clock, RandomSource};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a selector may know about the request being placed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pick<'a> {
    /// The key of `/data/{key}`, for key-hash.
    pub key: Option<&'a [u8]>,
    /// Indices already tried by this request; a retry goes elsewhere.
    pub tried: &'a [usize],
    /// No backend is available (see `BackendSet::in_panic`): failed health checks are ignored;
    /// ejection and draining are still respected.
    pub panic: bool,
}

impl Pick<'_> {
    /// A backend this request may go to now.
    #[inline]
    pub fn eligible(&self, backends: &[Arc<Backend>], i: usize) -> bool {
        backends[i].is_selectable(self.panic) && !self.tried.contains(&i)
    }
}

/// Chooses a backend for one request. Built once per backend set (so per-set state such as
/// the SWRR weights or the hash ring lives with the set it describes) and shared by all tasks.
pub trait SelectionAlgorithm: Send + Sync + 'static {
    /// The index in `backends` of the chosen backend, or `None` when none is eligible.
    fn select(&self, backends: &[Arc<Backend>], pick: &Pick<'_>) -> Option<usize>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
    P2c,
    KeyHash,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::RoundRobin => "round-robin",
            Self::WeightedRoundRobin => "weighted-round-robin",
            Self::LeastConnections => "least-connections",
            Self::P2c => "p2c",
            Self::KeyHash => "key-hash",
        }
    }

    /// Builds the selector for this set of backends (weights are read now).
    pub fn build(
        self,
        backends: &[Arc<Backend>],
        rng: Arc<dyn RandomSource>,
        clock: Arc<dyn Clock>,
        hash_load_factor: f64,
    ) -> Box<dyn SelectionAlgorithm> {
        match self {
            Self::RoundRobin => Box::new(RoundRobin::default()),
            Self::WeightedRoundRobin => Box::new(SmoothWeightedRoundRobin::new(backends)),
            Self::LeastConnections => Box::new(LeastConnections::default()),
            Self::P2c => Box::new(PowerOfTwoChoices::new(rng, clock)),
            Self::KeyHash => Box::new(KeyHash::new(backends, hash_load_factor)),
        }
    }
}

/// The first eligible index at or after `start` (wrapping), so scans start at a rotating point.
#[inline]
pub(crate) fn first_eligible_from(backends: &[Arc<Backend>], pick: &Pick<'_>, start: usize) -> Option<usize> {
    let n = backends.len();
    (0..n)
        .map(|k| (start + k) % n)
        .find(|&i| pick.eligible(backends, i))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Backends `127.0.0.1:1..` with the given weights, all healthy.
    pub fn backends(weights: &[u32]) -> Vec<Arc<Backend>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Arc::new(Backend::new(format!("127.0.0.1:{}", i + 1).parse().unwrap(), w)))
            .collect()
    }

    pub fn run(sel: &dyn SelectionAlgorithm, bs: &[Arc<Backend>], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| sel.select(bs, &Pick::default()).unwrap())
            .collect()
    }
}
