//! Hit ratio of each policy against moka's W-TinyLFU on the same seeded traces, plus
//! hot-key `get` throughput as a ratio to moka measured in the same run.
//!
//! Run with `cargo bench -p hakv-cache --bench hit_ratio`; prints markdown.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use hakv_cache::{Admission, Cache, CacheConfig, ENTRY_OVERHEAD_BYTES, Policy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 0x5eed_cace;
const DISTINCT_KEYS: u64 = 100_000;
const ZIPF_EXPONENT: f64 = 0.99;
const ZIPF_REQUESTS: usize = 1_000_000;
/// Scan-polluted: after every `SCAN_EVERY` Zipf requests, one sequential scan of
/// `SCAN_LENGTH` keys that are never requested again.
const SCAN_EVERY: usize = 100_000;
const SCAN_LENGTH: u64 = 50_000;
/// Shifting: every `SHIFT_EVERY` requests the popularity ranking moves to other keys
/// (rank r becomes key r + phase * SHIFT_STRIDE), so yesterday's hot keys go cold.
const SHIFT_EVERY: usize = 100_000;
const SHIFT_STRIDE: u64 = 12_345;
const CAPACITY_PERCENTS: [u64; 4] = [1, 5, 10, 25];
const HOT_KEY_GETS: u64 = 2_000_000;

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`, by
/// binary search in the cumulative distribution (exact, and fast enough here).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut StdRng) -> u64 {
        let target = rng.random::<f64>() * self.cumulative[self.cumulative.len() - 1];
        let rank = self.cumulative.partition_point(|&c| c < target);
        rank.min(self.cumulative.len() - 1) as u64
    }
}

fn zipf_trace(zipf: &Zipf) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..ZIPF_REQUESTS).map(|_| zipf.sample(&mut rng)).collect()
}

fn scan_polluted_trace(zipf: &Zipf) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    // Scan keys start past the Zipf key space and never repeat.
    let mut next_scan_key = DISTINCT_KEYS;
    let mut trace = Vec::with_capacity(ZIPF_REQUESTS * 3 / 2);
    for request in 0..ZIPF_REQUESTS {
        trace.push(zipf.sample(&mut rng));
        if (request + 1) % SCAN_EVERY == 0 {
            trace.extend(next_scan_key..next_scan_key + SCAN_LENGTH);
            next_scan_key += SCAN_LENGTH;
        }
    }
    trace
}

fn shifting_trace(zipf: &Zipf) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..ZIPF_REQUESTS)
        .map(|request| {
            let phase = (request / SHIFT_EVERY) as u64;
            (zipf.sample(&mut rng) + phase * SHIFT_STRIDE) % DISTINCT_KEYS
        })
        .collect()
}

/// Read-through replay: every miss is followed by a fill, as hakv's read path does (taken
/// on every miss, or on the second with `Admission::SecondMiss`). All entries weigh the
/// same, so a byte budget of `entries * ENTRY_OVERHEAD_BYTES` holds `entries`.
fn replay_ours(trace: &[u64], policy: Policy, entries: u64, shards: usize, admission: Admission) -> f64 {
    let cache: Cache<u64, u64> = Cache::new(CacheConfig {
        policy,
        capacity_bytes: entries * ENTRY_OVERHEAD_BYTES,
        shards,
        admission,
    });
    for &key in trace {
        if cache.get(&key).is_none() {
            cache.fill(key, key, 0, 0);
        }
    }
    cache.stats().hit_ratio()
}

fn replay_moka(trace: &[u64], entries: u64) -> f64 {
    let cache: moka::sync::Cache<u64, u64> = moka::sync::Cache::new(entries);
    let mut hits = 0u64;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
        }
    }
    hits as f64 / trace.len() as f64
}

fn hit_ratio_table() {
    let zipf = Zipf::new(DISTINCT_KEYS, ZIPF_EXPONENT);
    let workloads = [
        ("zipf 0.99", zipf_trace(&zipf)),
        ("zipf 0.99 + scans", scan_polluted_trace(&zipf)),
        ("zipf 0.99, hot set shifting", shifting_trace(&zipf)),
    ];
    println!(
        "| workload | capacity | lru | fifo | lfu | lru, 16 shards | lru, 16 shards, second-miss admission (hakv serve) | lfu, second-miss admission | moka 0.12 (W-TinyLFU) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, trace) in &workloads {
        for percent in CAPACITY_PERCENTS {
            let entries = DISTINCT_KEYS * percent / 100;
            let first = Admission::FirstMiss;
            let ratios = [
                replay_ours(trace, Policy::Lru, entries, 1, first),
                replay_ours(trace, Policy::Fifo, entries, 1, first),
                replay_ours(trace, Policy::Lfu, entries, 1, first),
                replay_ours(trace, Policy::Lru, entries, 16, first),
                replay_ours(trace, Policy::Lru, entries, 16, Admission::SecondMiss),
                replay_ours(trace, Policy::Lfu, entries, 1, Admission::SecondMiss),
                replay_moka(trace, entries),
            ];
            let cells: Vec<String> = ratios
                .iter()
                .map(|ratio| format!("{:.1}%", ratio * 100.0))
                .collect();
            println!(
                "| {name} ({} requests) | {percent}% ({entries} entries) | {} |",
                trace.len(),
                cells.join(" | ")
            );
        }
    }
}

/// Nanoseconds per `get` of one hot key, over `threads` threads sharing the cache.
fn hot_key_ns(threads: u64, get: impl Fn(u64) -> bool + Sync) -> f64 {
    let per_thread = HOT_KEY_GETS / threads;
    let start = Instant::now();
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    assert!(black_box(get(black_box(7))));
                }
            });
        }
    });
    start.elapsed().as_nanos() as f64 / (per_thread * threads) as f64
}

fn hot_key_throughput() {
    let ours: Cache<u64, Arc<[u8]>> = Cache::new(CacheConfig {
        capacity_bytes: 1 << 20,
        ..CacheConfig::default()
    });
    ours.put(7, Arc::from(vec![0u8; 100]), 100);
    let moka: moka::sync::Cache<u64, Arc<[u8]>> = moka::sync::Cache::new(1_000);
    moka.insert(7, Arc::from(vec![0u8; 100]));

    println!();
    println!("| hot-key get | hakv-cache (lru, 16 shards) ns/get | moka ns/get | throughput vs moka |");
    println!("|---|---|---|---|");
    for threads in [1, 2] {
        let ours_ns = hot_key_ns(threads, |key| ours.get(&key).is_some());
        let moka_ns = hot_key_ns(threads, |key| moka.get(&key).is_some());
        println!(
            "| {threads} thread(s), {HOT_KEY_GETS} gets | {ours_ns:.0} | {moka_ns:.0} | {:.2}x |",
            moka_ns / ours_ns
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then a
    // smoke run would take as long as the real one, so skip it.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("hit_ratio: run with `cargo bench -p hakv-cache --bench hit_ratio`");
        return;
    }
    hit_ratio_table();
    hot_key_throughput();
}
