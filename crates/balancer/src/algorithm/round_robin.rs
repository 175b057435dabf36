//! Round robin: each eligible backend in turn, ignoring weights.

use super::{Pick, SelectionAlgorithm, first_eligible_from};
use crate::backend::Backend;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl SelectionAlgorithm for RoundRobin {
    fn select(&self, backends: &[Arc<Backend>], pick: &Pick<'_>) -> Option<usize> {
        if backends.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Relaxed) % backends.len();
        let chosen = first_eligible_from(backends, pick, start)?;
        if chosen != start {
            // Skipped a down backend: continue after the chosen one, so the next request does
            // not land on the same survivor twice in a row.
            self.next.store(chosen + 1, Relaxed);
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::{backends, run};

    #[test]
    fn cycles_through_backends_in_order() {
        let bs = backends(&[5, 1, 1]);
        assert_eq!(run(&RoundRobin::default(), &bs, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn skips_down_backends_and_keeps_alternating_among_the_rest() {
        let bs = backends(&[1, 1, 1]);
        bs[1].set_healthy_for_test(false);
        assert_eq!(run(&RoundRobin::default(), &bs, 6), [0, 2, 0, 2, 0, 2]);
    }

    #[test]
    fn a_retry_skips_the_backends_already_tried() {
        let bs = backends(&[1, 1, 1]);
        let rr = RoundRobin::default();
        let pick = Pick {
            key: None,
            tried: &[0, 1],
            panic: false,
        };
        assert_eq!(rr.select(&bs, &pick), Some(2));
        let pick = Pick {
            key: None,
            tried: &[0, 1, 2],
            panic: false,
        };
        assert_eq!(rr.select(&bs, &pick), None);
    }
}
