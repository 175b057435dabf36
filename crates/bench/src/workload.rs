//! What each request is: read or write, and which key, drawn from a seeded rng.

use crate::config::{BenchConfig, KeyDist};
use crate::zipf::Zipf;
use rand::Rng;

/// One operation on key `bench-{index}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read(u64),
    Write(u64),
}

#[derive(Debug, Clone)]
enum KeySampler {
    Uniform(u64),
    Zipf(Zipf),
}

/// The read/write mix over the key space.
#[derive(Debug, Clone)]
pub struct Workload {
    keys: KeySampler,
    write_ratio: f64,
}

impl Workload {
    pub fn new(config: &BenchConfig) -> Workload {
        let keys = match config.key_dist {
            // validate() has checked the exponent, so None only means a misuse of this type.
            KeyDist::Zipf => Zipf::new(config.keys, config.zipf_s)
                .map(KeySampler::Zipf)
                .unwrap_or(KeySampler::Uniform(config.keys.max(1))),
            KeyDist::Uniform => KeySampler::Uniform(config.keys.max(1)),
        };
        Workload {
            keys,
            write_ratio: config.write_ratio,
        }
    }

    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> Op {
        let key = match &self.keys {
            KeySampler::Uniform(n) => rng.random_range(0..*n),
            // Rank 1 is the hottest key, bench-0.
            KeySampler::Zipf(zipf) => zipf.sample(rng) - 1,
        };
        if self.write_ratio > 0.0 && rng.random::<f64>() < self.write_ratio {
            Op::Write(key)
        } else {
            Op::Read(key)
        }
    }
}

/// The name of key number `index`.
pub fn key_name(index: u64) -> String {
    format!("bench-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn draw(config: &BenchConfig, seed: u64, n: usize) -> Vec<Op> {
        let workload = Workload::new(config);
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n).map(|_| workload.next(&mut rng)).collect()
    }

    #[test]
    fn write_ratio_and_key_range_hold() {
        let config = BenchConfig {
            keys: 50,
            write_ratio: 0.25,
            key_dist: KeyDist::Uniform,
            ..BenchConfig::default()
        };
        let ops = draw(&config, 3, 40_000);
        let writes = ops.iter().filter(|op| matches!(op, Op::Write(_))).count();
        let share = writes as f64 / ops.len() as f64;
        assert!((0.24..0.26).contains(&share), "write share {share}");
        assert!(
            ops.iter()
                .all(|op| matches!(op, Op::Read(k) | Op::Write(k) if *k < 50))
        );
        // Uniform: every key is hit.
        let mut seen = [false; 50];
        ops.iter().for_each(|op| match op {
            Op::Read(k) | Op::Write(k) => seen[*k as usize] = true,
        });
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn zero_write_ratio_only_reads_and_seed_replays() {
        let config = BenchConfig {
            write_ratio: 0.0,
            ..BenchConfig::default()
        };
        let ops = draw(&config, 7, 1000);
        assert!(ops.iter().all(|op| matches!(op, Op::Read(_))));
        assert_eq!(ops, draw(&config, 7, 1000));
        assert_ne!(ops, draw(&config, 8, 1000));
    }

    #[test]
    fn zipf_makes_key_zero_the_hottest() {
        let config = BenchConfig {
            keys: 1000,
            ..BenchConfig::default()
        };
        let ops = draw(&config, 1, 20_000);
        let hits = |key| {
            ops.iter()
                .filter(|op| matches!(op, Op::Read(k) | Op::Write(k) if *k == key))
                .count()
        };
        assert!(hits(0) > hits(1) && hits(1) > hits(10) && hits(10) > hits(500));
    }
}
