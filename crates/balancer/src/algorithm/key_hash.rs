//! Key affinity: consistent hashing with bounded load on the key of `/data/{key}`, so each
//! node's cache sees a stable share of the keys, yet no backend takes more than
//! `load_factor` × its fair share of the in-flight requests (Mirrokni, Thorup, Zadimoghaddam,
//! "Consistent Hashing with Bounded Loads"). Requests without a key go round robin.

use super::{Pick, RoundRobin, SelectionAlgorithm};
use crate::backend::Backend;
use crate::clock::stable_hash;
use std::sync::Arc;

/// Ring points per unit of weight; enough that shares stay within a few percent of the weights.
const POINTS_PER_WEIGHT: u64 = 64;
/// Points on one ring, at most (16 MiB of `(u64, usize)`): 1024 backends of weight 1000 would
/// ask for 65M. Above it every backend's points are scaled down alike, so shares still follow
/// the weights; each keeps at least one, so the ring may pass the cap by one point per backend.
/// A scaled ring rescales every backend on any change to the set, so more keys move then than
/// the 1/N of an unscaled ring.
const MAX_RING_POINTS: u64 = 1 << 20;

#[derive(Debug)]
pub struct KeyHash {
    /// (point, backend index), sorted by point.
    ring: Vec<(u64, usize)>,
    weights: Vec<u64>,
    load_factor: f64,
    keyless: RoundRobin,
}

impl KeyHash {
    pub fn new(backends: &[Arc<Backend>], load_factor: f64) -> Self {
        let wanted: u64 = backends
            .iter()
            .map(|b| POINTS_PER_WEIGHT * u64::from(b.weight()))
            .sum();
        let mut ring = Vec::with_capacity(wanted.min(MAX_RING_POINTS) as usize);
        for (i, b) in backends.iter().enumerate() {
            let points = ring_points(u64::from(b.weight()), wanted);
            // Points derive from the address, not the index, so a backend keeps its points
            // when another one joins or leaves.
            for v in 0..points {
                ring.push((stable_hash(format!("{}#{v}", b.addr()).as_bytes()), i));
            }
        }
        ring.sort_unstable();
        Self {
            ring,
            weights: backends.iter().map(|b| u64::from(b.weight())).collect(),
            load_factor,
            keyless: RoundRobin::default(),
        }
    }

    fn capacity(&self, backends: &[Arc<Backend>], pick: &Pick<'_>, i: usize) -> f64 {
        let (mut load, mut weight) = (0u64, 0u64);
        for (k, b) in backends.iter().enumerate() {
            if pick.eligible(backends, k) {
                load += b.in_flight();
                weight += self.weights[k];
            }
        }
        (self.load_factor * (load + 1) as f64 * self.weights[i] as f64 / weight.max(1) as f64).ceil()
    }
}

/// A backend's points: `POINTS_PER_WEIGHT` per unit of weight, scaled down when the ring would
/// pass `MAX_RING_POINTS` (`wanted` is the unscaled total).
fn ring_points(weight: u64, wanted: u64) -> u64 {
    let points = POINTS_PER_WEIGHT * weight;
    if wanted <= MAX_RING_POINTS {
        points
    } else {
        (points * MAX_RING_POINTS / wanted).max(1)
    }
}

impl SelectionAlgorithm for KeyHash {
    fn select(&self, backends: &[Arc<Backend>], pick: &Pick<'_>) -> Option<usize> {
        let Some(key) = pick.key else {
            return self.keyless.select(backends, pick);
        };
        if self.ring.is_empty() {
            return None;
        }
        let h = stable_hash(key);
        let start = self.ring.partition_point(|&(p, _)| p < h);
        let mut fallback = None;
        for k in 0..self.ring.len() {
            let i = self.ring[(start + k) % self.ring.len()].1;
            if i >= backends.len() || !pick.eligible(backends, i) {
                continue;
            }
            fallback.get_or_insert(i);
            if (backends[i].in_flight() as f64) < self.capacity(backends, pick, i) {
                return Some(i);
            }
        }
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::backends;

    fn owner(sel: &KeyHash, bs: &[Arc<Backend>], key: &str) -> String {
        let pick = Pick {
            key: Some(key.as_bytes()),
            tried: &[],
            panic: false,
        };
        bs[sel.select(bs, &pick).unwrap()].addr().to_owned()
    }

    #[test]
    fn only_the_keys_of_a_leaving_backend_move() {
        let all = backends(&[1, 1, 1, 1, 1]);
        let before = KeyHash::new(&all, 1.25);
        let rest: Vec<_> = all
            .iter()
            .filter(|b| b.addr() != "127.0.0.1:3")
            .cloned()
            .collect();
        let after = KeyHash::new(&rest, 1.25);
        let keys: Vec<String> = (0..10_000).map(|i| format!("user/{i}")).collect();
        let mut moved = 0;
        for k in &keys {
            let (a, b) = (owner(&before, &all, k), owner(&after, &rest, k));
            if a != b {
                assert_eq!(a, "127.0.0.1:3", "key {k} moved between survivors");
                moved += 1;
            }
        }
        // Exactly the leaving backend's keys move: about 1/5 of them.
        let share = moved as f64 / keys.len() as f64;
        assert!((0.12..0.28).contains(&share), "moved share {share}");
    }

    #[test]
    fn the_same_key_always_lands_on_the_same_backend() {
        let bs = backends(&[1, 1, 1]);
        let sel = KeyHash::new(&bs, 1.25);
        let first = owner(&sel, &bs, "alpha");
        for _ in 0..10 {
            assert_eq!(owner(&sel, &bs, "alpha"), first);
        }
    }

    #[test]
    fn a_full_backend_overflows_to_the_next_on_the_ring() {
        let bs = backends(&[1, 1]);
        let sel = KeyHash::new(&bs, 1.25);
        let home = owner(&sel, &bs, "hot");
        let home_i = bs.iter().position(|b| b.addr() == home).unwrap();
        // 10 in flight at home, 0 elsewhere: capacity is ceil(1.25 × 11 / 2) = 7 < 10.
        bs[home_i].set_in_flight_for_test(10);
        assert_ne!(owner(&sel, &bs, "hot"), home);
        bs[home_i].set_in_flight_for_test(0);
        assert_eq!(owner(&sel, &bs, "hot"), home);
    }

    #[test]
    fn the_ring_is_capped_and_keeps_the_weights() {
        // Unscaled: 64 points per unit of weight.
        assert_eq!(ring_points(3, 1000), 192);
        // 1024 backends of weight 1000 would want 65.5M points.
        let wanted = 1024 * 1000 * POINTS_PER_WEIGHT;
        assert_eq!(ring_points(1000, wanted), MAX_RING_POINTS / 1024);
        assert_eq!(ring_points(1, wanted), 1, "every backend keeps a point");
        let bs = backends(&[1000, 1000, 500]);
        let sel = KeyHash::new(&bs, 1.25);
        assert_eq!(sel.ring.len(), 160_000, "under the cap nothing is scaled");
        let many: Vec<u32> = vec![1000; 40];
        let bs = backends(&many);
        let sel = KeyHash::new(&bs, 1.25);
        assert!(
            sel.ring.len() as u64 <= MAX_RING_POINTS + 40,
            "{}",
            sel.ring.len()
        );
        assert!(
            sel.ring.len() as u64 > MAX_RING_POINTS * 9 / 10,
            "{}",
            sel.ring.len()
        );
    }

    #[test]
    fn requests_without_a_key_go_round_robin() {
        let bs = backends(&[1, 1]);
        let sel = KeyHash::new(&bs, 1.25);
        let seq: Vec<_> = (0..4)
            .map(|_| sel.select(&bs, &Pick::default()).unwrap())
            .collect();
        assert_eq!(seq, [0, 1, 0, 1]);
    }
}
