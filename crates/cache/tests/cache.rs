//! Behaviour of the public `Cache` API: lookups, byte bounds, eviction per policy,
//! sharding, statistics and recovery from a panic under a shard lock.

use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use hakv_cache::{Cache, CacheConfig, CacheStats, ENTRY_OVERHEAD_BYTES, Policy};

/// One shard with room for exactly `entries` entries of weight 0.
fn single_shard(policy: Policy, entries: u64) -> Cache<u32, u32> {
    Cache::new(CacheConfig {
        policy,
        capacity_bytes: entries * ENTRY_OVERHEAD_BYTES,
        shards: 1,
        admission: Default::default(),
    })
}

fn resident(cache: &Cache<u32, u32>, keys: std::ops::Range<u32>) -> Vec<u32> {
    keys.filter(|key| cache.contains_key(key)).collect()
}

#[test]
fn get_counts_hits_and_misses_and_returns_the_latest_put() {
    let cache: Cache<String, Arc<str>> = Cache::new(CacheConfig::default());
    assert_eq!(cache.get("a"), None);
    cache.put("a".to_owned(), Arc::from("one"), 3);
    cache.put("a".to_owned(), Arc::from("two"), 3);
    assert_eq!(cache.get("a").as_deref(), Some("two"));
    cache.remove("a");
    assert_eq!(cache.get("a"), None);

    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 2, 2));
    assert_eq!((stats.entries, stats.bytes, stats.evictions), (0, 0, 0));
    assert_eq!(stats.capacity_bytes, CacheConfig::default().capacity_bytes);
    assert_eq!(stats.hit_ratio(), 1.0 / 3.0);
}

#[test]
fn bytes_are_the_weight_plus_the_entry_overhead() {
    let cache: Cache<u32, u32> = Cache::new(CacheConfig::default());
    cache.put(1, 1, 100);
    cache.put(2, 2, 0);
    assert_eq!(cache.stats().bytes, 100 + 2 * ENTRY_OVERHEAD_BYTES);
    cache.put(1, 1, 10);
    assert_eq!(cache.stats().bytes, 10 + 2 * ENTRY_OVERHEAD_BYTES);
}

#[test]
fn lru_evicts_the_least_recently_read() {
    let cache = single_shard(Policy::Lru, 3);
    for key in 0..3 {
        cache.put(key, key, 0);
    }
    cache.get(&0);
    cache.put(3, 3, 0);
    assert_eq!(resident(&cache, 0..4), [0, 2, 3]);
    cache.get(&2);
    cache.put(4, 4, 0);
    assert_eq!(resident(&cache, 0..5), [2, 3, 4]);
    assert_eq!(cache.stats().evictions, 2);
}

#[test]
fn fifo_evicts_the_oldest_insert_even_if_it_is_read() {
    let cache = single_shard(Policy::Fifo, 3);
    for key in 0..3 {
        cache.put(key, key, 0);
    }
    cache.get(&0);
    cache.get(&0);
    cache.put(3, 3, 0);
    assert_eq!(resident(&cache, 0..4), [1, 2, 3]);
}

#[test]
fn lfu_evicts_the_least_read_and_the_least_recent_among_equals() {
    let cache = single_shard(Policy::Lfu, 3);
    for key in 0..3 {
        cache.put(key, key, 0);
    }
    // Uses: 0 -> 3, 1 -> 2, 2 -> 2 (2 read after 1).
    for key in [0, 0, 1, 2] {
        cache.get(&key);
    }
    cache.put(3, 3, 0);
    assert_eq!(resident(&cache, 0..4), [0, 2, 3]);
    // 3 has one use, the fewest, so it goes next even though it is the newest.
    cache.put(4, 4, 0);
    assert_eq!(resident(&cache, 0..5), [0, 2, 4]);
}

#[test]
fn a_put_replaces_history_too() {
    let cache = single_shard(Policy::Lfu, 2);
    cache.put(0, 0, 0);
    cache.put(1, 1, 0);
    for _ in 0..5 {
        cache.get(&0);
    }
    // Re-putting 0 starts it again at one use; 1 then reaches two, so 0 goes.
    cache.put(0, 10, 0);
    cache.get(&1);
    cache.put(2, 2, 0);
    assert_eq!(resident(&cache, 0..3), [1, 2]);
}

#[test]
fn a_heavy_put_evicts_as_many_entries_as_it_needs() {
    let cache = single_shard(Policy::Lru, 4);
    for key in 0..4 {
        cache.put(key, key, 0);
    }
    cache.put(9, 9, 2 * ENTRY_OVERHEAD_BYTES);
    assert_eq!(resident(&cache, 0..10), [3, 9]);
    assert_eq!(cache.stats().evictions, 3);
}

#[test]
fn an_entry_bigger_than_a_shard_is_not_cached_and_drops_the_old_value() {
    let cache = single_shard(Policy::Lru, 2);
    cache.put(0, 0, 0);
    cache.put(1, 1, 0);
    cache.put(1, 2, 2 * ENTRY_OVERHEAD_BYTES);
    assert_eq!(resident(&cache, 0..2), [0]);
    let stats = cache.stats();
    assert_eq!((stats.evictions, stats.inserts), (0, 2));
}

#[test]
fn capacity_is_split_evenly_across_shards() {
    let cache: Cache<u32, u32> = Cache::new(CacheConfig {
        policy: Policy::Lru,
        capacity_bytes: 4 * 2 * ENTRY_OVERHEAD_BYTES,
        shards: 4,
        admission: Default::default(),
    });
    // Each entry fills a whole shard, so at most one per shard stays.
    for key in 0..100 {
        cache.put(key, key, ENTRY_OVERHEAD_BYTES);
        let stats = cache.stats();
        assert!(stats.entries <= 4);
        assert!(stats.bytes <= stats.capacity_bytes);
    }
    let stats = cache.stats();
    assert_eq!(stats.evictions, stats.inserts - stats.entries);
    assert_eq!(stats.capacity_bytes, 8 * ENTRY_OVERHEAD_BYTES);
}

#[test]
fn zero_capacity_caches_nothing() {
    let cache: Cache<u32, u32> = Cache::new(CacheConfig {
        capacity_bytes: 0,
        ..CacheConfig::default()
    });
    cache.put(1, 1, 0);
    assert!(!cache.fill(2, 2, 0, 0));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn clear_drops_entries_and_keeps_counters() {
    let cache = single_shard(Policy::Lru, 3);
    cache.put(1, 1, 0);
    cache.get(&1);
    cache.clear();
    assert_eq!(cache.get(&1), None);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
    assert_eq!((stats.entries, stats.bytes), (0, 0));
}

#[test]
#[should_panic(expected = "cache shards must be a power of two")]
fn new_refuses_an_invalid_config() {
    let _ = Cache::<u32, u32>::new(CacheConfig {
        shards: 3,
        ..CacheConfig::default()
    });
}

/// A key whose `Clone` panics on demand, to poison a shard lock mid-insert.
#[derive(Debug)]
struct Fragile {
    id: u32,
    explode_on_clone: bool,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        assert!(!self.explode_on_clone, "boom");
        Fragile { ..*self }
    }
}

impl PartialEq for Fragile {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Fragile {}

impl Hash for Fragile {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

#[test]
fn a_panic_under_a_shard_lock_empties_the_shard_instead_of_breaking_it() {
    let cache: Cache<Fragile, u32> = Cache::new(CacheConfig {
        shards: 1,
        ..CacheConfig::default()
    });
    let key = |id| Fragile {
        id,
        explode_on_clone: false,
    };
    cache.put(key(1), 1, 0);
    let bomb = Fragile {
        id: 2,
        explode_on_clone: true,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| cache.put(bomb, 2, 0)));
    assert!(outcome.is_err());

    assert_eq!(cache.get(&key(1)), None);
    cache.put(key(3), 3, 0);
    assert_eq!(cache.get(&key(3)), Some(3));
    let CacheStats { entries, bytes, .. } = cache.stats();
    assert_eq!((entries, bytes), (1, ENTRY_OVERHEAD_BYTES));
}

#[test]
fn cache_is_send_and_sync_for_shared_values() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cache<String, Arc<Vec<u8>>>>();
}

#[test]
fn byte_accounting_does_not_overflow_near_u64_max() {
    // Every policy: S3-FIFO also sizes its frequency sketch from the byte budget.
    for policy in Policy::ALL {
        let cache: Cache<u32, u32> = Cache::new(CacheConfig {
            policy,
            capacity_bytes: u64::MAX,
            shards: 1,
            admission: Default::default(),
        });
        cache.put(1, 1, u64::MAX - ENTRY_OVERHEAD_BYTES);
        cache.put(2, 2, u64::MAX);
        assert_eq!(resident(&cache, 0..3), [2], "{policy:?}");
        assert_eq!(cache.stats().bytes, u64::MAX, "{policy:?}");
    }
}

#[test]
fn with_second_miss_admission_a_value_is_cached_on_its_second_miss() {
    let cache: Cache<u32, u32> = Cache::new(CacheConfig {
        admission: hakv_cache::Admission::SecondMiss,
        ..CacheConfig::default()
    });
    assert!(!cache.fill(7, 70, 4, 0), "the first miss is only remembered");
    assert!(!cache.contains_key(&7));
    assert!(cache.fill(7, 70, 4, 0), "the second is cached");
    assert_eq!(cache.get(&7), Some(70));
    // Writes still reach every key, admitted or not.
    cache.put(8, 80, 4);
    assert_eq!(cache.get(&8), Some(80));
}

#[test]
fn s3fifo_keeps_mixed_weights_within_the_byte_budget() {
    let capacity = 64 * 1024;
    let cache: Cache<u32, u32> = Cache::new(CacheConfig {
        policy: Policy::S3Fifo,
        capacity_bytes: capacity,
        shards: 1,
        admission: Default::default(),
    });
    let mut state = 1u64;
    for round in 0..20_000u32 {
        // Pseudo-random keys, squared so that small keys are read more often.
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let uniform = (state >> 40) as f64 / (1u64 << 24) as f64;
        let key = (uniform * uniform * 3_000.0) as u32;
        if cache.get(&key).is_none() {
            // Weights 0 to 4 KiB, fixed per key.
            cache.fill(key, round, u64::from(key * 7 % 4096), 0);
        }
        let stats = cache.stats();
        assert!(stats.bytes <= capacity, "{stats:?}");
    }
    let stats = cache.stats();
    assert!(stats.hits > 0 && stats.evictions > 0, "{stats:?}");
}
