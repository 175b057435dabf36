//! Least connections, weighted: the eligible backend with the fewest in-flight requests per unit
//! of weight. Ties go round robin so an idle cluster still spreads load.

use super::{Pick, SelectionAlgorithm};
use crate::backend::Backend;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct LeastConnections {
    next: AtomicUsize,
}

impl SelectionAlgorithm for LeastConnections {
    fn select(&self, backends: &[Arc<Backend>], pick: &Pick<'_>) -> Option<usize> {
        let n = backends.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Relaxed) % n;
        let mut best: Option<(usize, u64, u64)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !pick.eligible(backends, i) {
                continue;
            }
            let (load, weight) = (backends[i].in_flight(), u64::from(backends[i].weight()));
            // load/weight < best_load/best_weight, compared without division.
            let better = match best {
                None => true,
                Some((_, bl, bw)) => u128::from(load) * u128::from(bw) < u128::from(bl) * u128::from(weight),
            };
            if better {
                best = Some((i, load, weight));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{backends, run};

    #[test]
    fn picks_the_backend_with_the_fewest_in_flight() {
        let bs = backends(&[1, 1, 1]);
        for (i, n) in [3, 1, 2].into_iter().enumerate() {
            bs[i].set_in_flight_for_test(n);
        }
        assert_eq!(run(&LeastConnections::default(), &bs, 5), [1; 5]);
    }

    #[test]
    fn in_flight_is_weighted() {
        let bs = backends(&[2, 1]);
        bs[0].set_in_flight_for_test(3); // 1.5 per unit of weight
        bs[1].set_in_flight_for_test(2); // 2 per unit
        assert_eq!(run(&LeastConnections::default(), &bs, 3), [0; 3]);
        bs[0].set_in_flight_for_test(5); // 2.5 per unit
        assert_eq!(run(&LeastConnections::default(), &bs, 3), [1; 3]);
    }

    #[test]
    fn ties_rotate_and_down_backends_are_skipped() {
        let bs = backends(&[1, 1, 1]);
        assert_eq!(run(&LeastConnections::default(), &bs, 4), [0, 1, 2, 0]);
        bs[0].set_in_flight_for_test(0);
        bs[1].set_healthy_for_test(false);
        bs[2].set_in_flight_for_test(9);
        assert_eq!(run(&LeastConnections::default(), &bs, 2), [0, 0]);
    }
}
