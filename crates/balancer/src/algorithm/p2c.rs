//! Power of two choices: draw two distinct backends at random and keep the one with the lower
//! cost, cost = (in-flight + 1) × latency EWMA / weight. Nearly as good as a global minimum,
//! without herding every request onto the one backend that looked best a moment ago.

use super::{Pick, SelectionAlgorithm};
use crate::backend::Backend;
use crate::clock::{Clock, RandomSource};
use std::sync::Arc;
use std::time::Duration;

pub struct PowerOfTwoChoices {
    rng: Arc<dyn RandomSource>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PowerOfTwoChoices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PowerOfTwoChoices")
    }
}

impl PowerOfTwoChoices {
    pub fn new(rng: Arc<dyn RandomSource>, clock: Arc<dyn Clock>) -> Self {
        Self { rng, clock }
    }

    /// Two distinct positions in `0..n` (n ≥ 2).
    fn two(&self, n: usize) -> (usize, usize) {
        let i = self.rng.below(n as u64) as usize;
        let mut j = self.rng.below(n as u64 - 1) as usize;
        if j >= i {
            j += 1;
        }
        (i, j)
    }
}

fn cost(b: &Backend, now: Duration) -> f64 {
    (b.in_flight() + 1) as f64 * b.ewma_latency_at(now) / f64::from(b.weight())
}

fn cheaper(backends: &[Arc<Backend>], i: usize, j: usize, now: Duration) -> usize {
    if cost(&backends[j], now) < cost(&backends[i], now) {
        j
    } else {
        i
    }
}

impl SelectionAlgorithm for PowerOfTwoChoices {
    fn select(&self, backends: &[Arc<Backend>], pick: &Pick<'_>) -> Option<usize> {
        let n = backends.len();
        if n < 2 {
            return (n == 1 && pick.eligible(backends, 0)).then_some(0);
        }
        let (i, j) = self.two(n);
        if pick.eligible(backends, i) && pick.eligible(backends, j) {
            return Some(cheaper(backends, i, j, self.clock.now()));
        }
        // Some backends are out: draw among the eligible ones only. This allocates, but only
        // while part of the cluster is down or on a retry.
        let eligible: Vec<usize> = (0..n).filter(|&k| pick.eligible(backends, k)).collect();
        match eligible.len() {
            0 => None,
            1 => Some(eligible[0]),
            m => {
                let (a, b) = self.two(m);
                Some(cheaper(backends, eligible[a], eligible[b], self.clock.now()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::testing::backends;
    use crate::clock::{ManualClock, ScriptedRandom};

    fn p2c(script: Vec<u64>) -> PowerOfTwoChoices {
        PowerOfTwoChoices::new(
            Arc::new(ScriptedRandom::new(script)),
            Arc::new(ManualClock::default()),
        )
    }

    #[test]
    fn keeps_the_cheaper_of_the_two_drawn() {
        let bs = backends(&[1, 1, 1, 1]);
        for b in &bs {
            b.set_ewma_for_test(0.001);
        }
        bs[2].set_in_flight_for_test(1); // cost 2 ms
        bs[0].set_in_flight_for_test(3); // cost 4 ms
        // Draws 0, then 1 of the remaining three -> backend 2: compares 0 and 2.
        let sel = p2c(vec![0, 1]);
        assert_eq!(sel.select(&bs, &Pick::default()), Some(2));
        // Draws 3 and 0: backend 3 is idle, so cheaper than 0.
        let sel = p2c(vec![3, 0]);
        assert_eq!(sel.select(&bs, &Pick::default()), Some(3));
    }

    #[test]
    fn latency_counts_as_much_as_load() {
        let bs = backends(&[1, 1]);
        bs[0].set_ewma_for_test(0.010); // idle but slow: cost 10 ms
        bs[1].set_ewma_for_test(0.001);
        bs[1].set_in_flight_for_test(4); // busy but fast: cost 5 ms
        let sel = p2c(vec![0, 0]);
        assert_eq!(sel.select(&bs, &Pick::default()), Some(1));
    }

    #[test]
    fn an_avoided_backend_is_tried_again_once_its_estimate_decays() {
        let bs = backends(&[1, 1]);
        let clock = Arc::new(ManualClock::default());
        let sel = PowerOfTwoChoices::new(Arc::new(ScriptedRandom::new(vec![0, 0])), clock.clone());
        bs[0].set_ewma_for_test(0.020); // one slow answer at time 0
        bs[1].set_ewma_for_test(0.001);
        assert_eq!(sel.select(&bs, &Pick::default()), Some(1));
        // Backend 1 keeps answering in 1 ms; backend 0 gets nothing, so its estimate decays.
        clock.advance(Duration::from_secs(2));
        for _ in 0..2 {
            bs[1].record_latency(Duration::from_millis(1), clock.now());
        }
        assert_eq!(sel.select(&bs, &Pick::default()), Some(0));
    }

    #[test]
    fn draws_only_among_eligible_backends_when_some_are_down() {
        let bs = backends(&[1, 1, 1]);
        bs[0].set_healthy_for_test(false);
        bs[1].set_in_flight_for_test(5);
        for b in &bs {
            b.set_ewma_for_test(0.001);
        }
        // First draw (0, 1) includes a down backend; the redraw among {1, 2} picks both.
        let sel = p2c(vec![0, 0, 0, 0]);
        assert_eq!(sel.select(&bs, &Pick::default()), Some(2));
        let pick = Pick {
            key: None,
            tried: &[2],
            panic: false,
        };
        assert_eq!(sel.select(&bs, &pick), Some(1));
    }
}
