//! Hit ratio of each policy against moka's W-TinyLFU on the same seeded traces, plus
//! hot-key `get` throughput as a ratio to moka measured in the same run.
//!
//! Run with `cargo bench -p hakv-cache --bench hit_ratio`; prints markdown.
//! While iterating, `HIT_RATIO_TRACES=shifting,mixed` runs only the traces whose
//! name contains one of the words, and `HIT_RATIO_QUICK=1` only the single-shard
//! `s3fifo` column (or `HIT_RATIO_POLICY`'s) and no throughput measurement.

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
/// Mixed, a synthetic stand-in for a production key-value trace. Each request is,
/// independently:
/// - with probability `MIXED_CORE`, a read of a long-lived key, Zipf with exponent
///   `MIXED_CORE_EXPONENT` over the `DISTINCT_KEYS` keys. Facebook's memcached pools
///   (Atikoglu et al., "Workload Analysis of a Large-Scale Key-Value Store",
///   SIGMETRICS 2012) and Twitter's (Yang et al., "A large scale analysis of hundreds
///   of in-memory cache clusters at Twitter", OSDI 2020) have Zipf-like popularity
///   with exponents mostly between 0.6 and 1.2.
/// - with probability `MIXED_LOOP`, the next key of a loop over `MIXED_LOOP_KEYS`
///   keys of their own, read in the same order again and again: a periodic batch job.
///   Loops are the classic pattern LRU handles worst once they exceed the cache
///   (Megiddo and Modha, "ARC", FAST 2003, whose database and search traces have them).
/// - otherwise a *burst*: one of `MIXED_BURSTS` short-lived keys, picked uniformly,
///   each read a geometrically distributed number of times (mean
///   `MIXED_BURST_MEAN_READS`) and then never again, replaced by a fresh key: the
///   temporal locality of new objects (Twitter's traces: many keys are read
///   intensively for minutes after they are written, then go cold).
const MIXED_CORE: f64 = 0.75;
const MIXED_CORE_EXPONENT: f64 = 0.9;
const MIXED_LOOP: f64 = 0.10;
const MIXED_LOOP_KEYS: u64 = 5_000;
const MIXED_BURSTS: usize = 64;
const MIXED_BURST_MEAN_READS: f64 = 16.0;
const MIXED_REQUESTS: usize = 1_000_000;
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

fn mixed_trace() -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let core = Zipf::new(DISTINCT_KEYS, MIXED_CORE_EXPONENT);
    // Key ranges that cannot overlap: core keys, then loop keys, then burst keys.
    let loop_start = DISTINCT_KEYS;
    let mut loop_position = 0;
    let mut next_burst_key = loop_start + MIXED_LOOP_KEYS;
    let mut bursts: Vec<u64> = (0..MIXED_BURSTS as u64).map(|i| next_burst_key + i).collect();
    next_burst_key += MIXED_BURSTS as u64;
    (0..MIXED_REQUESTS)
        .map(|_| {
            let pick = rng.random::<f64>();
            if pick < MIXED_CORE {
                core.sample(&mut rng)
            } else if pick < MIXED_CORE + MIXED_LOOP {
                loop_position = (loop_position + 1) % MIXED_LOOP_KEYS;
                loop_start + loop_position
            } else {
                let burst = rng.random_range(0..MIXED_BURSTS);
                let key = bursts[burst];
                // After each read the key ends with probability 1 / mean, which makes
                // its number of reads geometric with that mean.
                if rng.random::<f64>() < 1.0 / MIXED_BURST_MEAN_READS {
                    bursts[burst] = next_burst_key;
                    next_burst_key += 1;
                }
                key
            }
        })
        .collect()
}

/// Builds one trace; the Zipf ones share the sampler's table.
type TraceBuilder = fn(&Zipf) -> Vec<u64>;

/// Whether `HIT_RATIO_TRACES` (comma-separated words) lets this trace run.
fn selected(name: &str) -> bool {
    match std::env::var("HIT_RATIO_TRACES") {
        Ok(words) => words.split(',').any(|word| name.contains(word.trim())),
        Err(_) => true,
    }
}

fn quick() -> bool {
    std::env::var_os("HIT_RATIO_QUICK").is_some()
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
    let traces: [(&str, TraceBuilder); 4] = [
        ("zipf 0.99", zipf_trace),
        ("zipf 0.99 + scans", scan_polluted_trace),
        ("zipf 0.99, hot set shifting", shifting_trace),
        ("mixed: zipf 0.9 core + loop + bursts", |_| mixed_trace()),
    ];
    let workloads: Vec<(&str, Vec<u64>)> = traces
        .into_iter()
        .filter(|(name, _)| selected(name))
        .map(|(name, trace)| (name, trace(&zipf)))
        .collect();
    if quick() {
        println!("| workload | capacity | s3fifo (or $HIT_RATIO_POLICY) |");
        println!("|---|---|---|");
    } else {
        println!(
            "| workload | capacity | lru | fifo | lfu | moka 0.12 (W-TinyLFU) | s3fifo | s3fifo, 16 shards | lru, 16 shards | lru, 16 shards, second-miss admission | s3fifo, 16 shards, second-miss admission | lfu, second-miss admission |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    }
    for (name, trace) in &workloads {
        for percent in CAPACITY_PERCENTS {
            let entries = DISTINCT_KEYS * percent / 100;
            let first = Admission::FirstMiss;
            let ratios = if quick() {
                let policy =
                    std::env::var("HIT_RATIO_POLICY").map_or(Policy::S3Fifo, |name| name.parse().unwrap());
                vec![replay_ours(trace, policy, entries, 1, first)]
            } else {
                vec![
                    replay_ours(trace, Policy::Lru, entries, 1, first),
                    replay_ours(trace, Policy::Fifo, entries, 1, first),
                    replay_ours(trace, Policy::Lfu, entries, 1, first),
                    replay_moka(trace, entries),
                    replay_ours(trace, Policy::S3Fifo, entries, 1, first),
                    replay_ours(trace, Policy::S3Fifo, entries, 16, first),
                    replay_ours(trace, Policy::Lru, entries, 16, first),
                    replay_ours(trace, Policy::Lru, entries, 16, Admission::SecondMiss),
                    replay_ours(trace, Policy::S3Fifo, entries, 16, Admission::SecondMiss),
                    replay_ours(trace, Policy::Lfu, entries, 1, Admission::SecondMiss),
                ]
            };
            let cells: Vec<String> = ratios
                .iter()
                .map(|ratio| format!("{:.2}%", ratio * 100.0))
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
    let ours = |policy| {
        let cache: Cache<u64, Arc<[u8]>> = Cache::new(CacheConfig {
            policy,
            capacity_bytes: 1 << 20,
            ..CacheConfig::default()
        });
        cache.put(7, Arc::from(vec![0u8; 100]), 100);
        cache
    };
    let lru = ours(Policy::Lru);
    let s3fifo = ours(Policy::S3Fifo);
    let moka: moka::sync::Cache<u64, Arc<[u8]>> = moka::sync::Cache::new(1_000);
    moka.insert(7, Arc::from(vec![0u8; 100]));

    println!();
    println!(
        "| hot-key get | lru, 16 shards ns/get | s3fifo, 16 shards ns/get | moka ns/get | lru vs moka | s3fifo vs moka |"
    );
    println!("|---|---|---|---|---|---|");
    for threads in [1, 2] {
        let lru_ns = hot_key_ns(threads, |key| lru.get(&key).is_some());
        let s3fifo_ns = hot_key_ns(threads, |key| s3fifo.get(&key).is_some());
        let moka_ns = hot_key_ns(threads, |key| moka.get(&key).is_some());
        println!(
            "| {threads} thread(s), {HOT_KEY_GETS} gets | {lru_ns:.0} | {s3fifo_ns:.0} | {moka_ns:.0} | {:.2}x | {:.2}x |",
            moka_ns / lru_ns,
            moka_ns / s3fifo_ns
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
    if !quick() {
        hot_key_throughput();
    }
}
