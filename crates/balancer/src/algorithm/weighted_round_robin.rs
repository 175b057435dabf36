//! Smooth weighted round robin (nginx's algorithm): every pick, each eligible backend gains its
//! weight, the richest wins and pays the total. Weights 5,1,1 give a a b a c a a: the heavy
//! backend's turns are spread out instead of bunched (a a a a a b c).

use super::{Pick, SelectionAlgorithm};
use crate::backend::Backend;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct SmoothWeightedRoundRobin {
    weights: Vec<i64>,
    /// The running "current weights". A mutex held for one O(n) pass without `.await`: the
    /// algorithm needs a consistent read-modify-write of all entries, and n is small.
    current: Mutex<Vec<i64>>,
}

impl SmoothWeightedRoundRobin {
    pub fn new(backends: &[Arc<Backend>]) -> Self {
        Self {
            weights: backends.iter().map(|b| i64::from(b.weight())).collect(),
            current: Mutex::new(vec![0; backends.len()]),
        }
    }
}

impl SelectionAlgorithm for SmoothWeightedRoundRobin {
    fn select(&self, backends: &[Arc<Backend>], pick: &Pick<'_>) -> Option<usize> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let mut total = 0;
        let mut best: Option<usize> = None;
        for (i, w) in self.weights.iter().enumerate().take(backends.len()) {
            if !pick.eligible(backends, i) {
                continue;
            }
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        current[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{backends, run};

    #[test]
    fn weights_5_1_1_give_the_nginx_sequence() {
        let bs = backends(&[5, 1, 1]);
        let swrr = SmoothWeightedRoundRobin::new(&bs);
        // a a b a c a a, twice: the sequence repeats every sum-of-weights picks.
        assert_eq!(run(&swrr, &bs, 14), [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn equal_weights_are_plain_round_robin() {
        let bs = backends(&[2, 2, 2]);
        let swrr = SmoothWeightedRoundRobin::new(&bs);
        assert_eq!(run(&swrr, &bs, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_down_backend_drops_out_and_the_rest_keep_their_ratio() {
        let bs = backends(&[3, 1, 2]);
        bs[2].set_healthy_for_test(false);
        let swrr = SmoothWeightedRoundRobin::new(&bs);
        let seq = run(&swrr, &bs, 8);
        assert_eq!(seq.iter().filter(|&&i| i == 0).count(), 6);
        assert_eq!(seq.iter().filter(|&&i| i == 1).count(), 2);
    }
}
