//! `fill` and `invalidate` keep a read-through cache coherent with a store that is
//! written elsewhere: first the exact races one by one, then real threads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use hakv_cache::{Cache, CacheConfig, ENTRY_OVERHEAD_BYTES, Policy};

fn one_shard(entries: u64) -> Cache<&'static str, &'static str> {
    Cache::new(CacheConfig {
        policy: Policy::Lru,
        capacity_bytes: entries * ENTRY_OVERHEAD_BYTES,
        shards: 1,
        admission: Default::default(),
    })
}

#[test]
fn a_fill_from_before_a_finished_write_is_refused() {
    let cache = one_shard(8);
    // Reader: misses, reads the store at snapshot 5 and is delayed.
    assert_eq!(cache.get("k"), None);
    let (read_stamp, read_value) = (5, "old");
    // Writer: commits revision 6 to the store, then invalidates.
    cache.invalidate("k", 6);
    // Reader resumes: its value is older than the write, so it must not be cached.
    assert!(!cache.fill("k", read_value, 0, read_stamp));
    assert_eq!(cache.get("k"), None);
    // A reader whose snapshot includes the write fills normally.
    assert!(cache.fill("k", "new", 0, 6));
    assert_eq!(cache.get("k"), Some("new"));
    assert_eq!(cache.stats().fills_rejected, 1);
}

#[test]
fn a_fill_may_replace_an_older_fill_but_never_a_newer_one_or_a_put() {
    let cache = one_shard(8);
    assert!(cache.fill("k", "v5", 0, 5));
    assert!(!cache.fill("k", "v4", 0, 4));
    assert!(!cache.fill("k", "v5 again", 0, 5));
    assert!(cache.fill("k", "v7", 0, 7));
    assert_eq!(cache.get("k"), Some("v7"));

    cache.put("p", "written", 0);
    assert!(!cache.fill("p", "read", 0, 100));
    assert_eq!(cache.get("p"), Some("written"));
}

#[test]
fn an_evicted_fill_still_blocks_older_fills_of_the_same_shard() {
    let cache = one_shard(1);
    // Reader B saw the value at snapshot 7 and cached it; it is then evicted.
    assert!(cache.fill("k", "v7", 0, 7));
    cache.put("other", "x", 0);
    assert!(!cache.contains_key("k"));
    // Reader A read the same key at snapshot 6, before a write B already saw.
    assert!(!cache.fill("k", "v6", 0, 6));
    assert!(cache.fill("k", "v7", 0, 7));
}

#[test]
fn a_refused_newer_fill_still_removes_an_older_cached_value() {
    let cache = one_shard(8);
    assert!(cache.fill("k", "v3", 0, 3));
    // A write to another key of the shard raises the stamp past this reader's snapshot…
    cache.invalidate("j", 9);
    // …so its value (snapshot 5) is not cached, but the older one must not survive it.
    assert!(!cache.fill("k", "v5", 0, 5));
    assert_eq!(cache.get("k"), None);
}

#[test]
fn clear_does_not_lower_the_write_stamp() {
    let cache = one_shard(8);
    cache.invalidate("k", 10);
    assert!(cache.fill("j", "v12", 0, 12));
    cache.clear();
    assert!(!cache.fill("k", "v9", 0, 9));
    assert!(!cache.fill("j", "v11", 0, 11));
    assert!(cache.fill("j", "v12", 0, 12));
}

/// The "store": a global revision and, per key, the revision of its last write. A
/// key's value is that revision, so values only grow and "older" is `<`.
#[derive(Default)]
struct Store {
    revision: u64,
    values: HashMap<u32, u64>,
}

const KEYS: u32 = 8;
const WRITERS: u32 = 2;
const WRITES_PER_WRITER: u32 = 3_000;
const READERS: u32 = 3;
const READS_PER_READER: u32 = 20_000;

/// Writers bump keys in the store and then invalidate; readers read through the
/// cache. A read must never return a value older than one any read had returned, or
/// any write had finished, before that read started.
fn readers_never_go_back_in_time(config: CacheConfig) {
    let cache: Cache<u32, u64> = Cache::new(config);
    let store = Mutex::new(Store::default());
    // Per key: the newest value a read has returned / a write has finished.
    let returned: Vec<AtomicU64> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();
    let written: Vec<AtomicU64> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();

    thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (cache, store, written) = (&cache, &store, &written);
            scope.spawn(move || {
                for i in 0..WRITES_PER_WRITER {
                    let key = (i * 7 + writer) % KEYS;
                    let revision = {
                        let mut store = store.lock().unwrap();
                        store.revision += 1;
                        let revision = store.revision;
                        store.values.insert(key, revision);
                        revision
                    };
                    // Between the commit above and this call, readers may see either;
                    // yielding here (and in readers) makes the races below common
                    // rather than rare on a machine with few cores.
                    thread::yield_now();
                    cache.invalidate(&key, revision);
                    written[key as usize].fetch_max(revision, Ordering::SeqCst);
                }
            });
        }
        for reader in 0..READERS {
            let (cache, store, returned, written) = (&cache, &store, &returned, &written);
            scope.spawn(move || {
                for i in 0..READS_PER_READER {
                    let key = (i * 3 + reader) % KEYS;
                    let slot = key as usize;
                    let floor = returned[slot]
                        .load(Ordering::SeqCst)
                        .max(written[slot].load(Ordering::SeqCst));
                    let value = cache.get(&key).unwrap_or_else(|| {
                        let (read_stamp, value) = {
                            let store = store.lock().unwrap();
                            (store.revision, store.values.get(&key).copied().unwrap_or(0))
                        };
                        thread::yield_now();
                        cache.fill(key, value, 8, read_stamp);
                        value
                    });
                    assert!(
                        value >= floor,
                        "key {key}: read {value} after {floor} was already seen"
                    );
                    returned[slot].fetch_max(value, Ordering::SeqCst);
                }
            });
        }
    });

    // The race was exercised from both sides, or the test proved nothing.
    let stats = cache.stats();
    assert!(stats.hits > 0 && stats.inserts > 0, "{stats:?}");
    assert_eq!(
        u64::from(WRITERS * WRITES_PER_WRITER),
        store.lock().unwrap().revision
    );
}

#[test]
fn readers_never_go_back_in_time_with_room_for_every_key() {
    for policy in Policy::ALL {
        readers_never_go_back_in_time(CacheConfig {
            policy,
            capacity_bytes: 1 << 20,
            shards: 4,
            admission: Default::default(),
        });
    }
}

#[test]
fn readers_never_go_back_in_time_while_evicting_constantly() {
    for policy in Policy::ALL {
        readers_never_go_back_in_time(CacheConfig {
            policy,
            // Two shards holding two entries each, for eight hot keys.
            capacity_bytes: 2 * 2 * (8 + ENTRY_OVERHEAD_BYTES),
            shards: 2,
            admission: Default::default(),
        });
    }
}

#[test]
fn invalidate_all_refuses_fills_from_before_a_store_replacement() {
    let cache: Cache<String, u64> = Cache::new(CacheConfig {
        policy: Policy::Lru,
        capacity_bytes: 1 << 20,
        shards: 4,
        admission: Default::default(),
    });
    cache.put("a".to_string(), 1, 8);
    cache.invalidate_all(10);
    assert_eq!(cache.get("a"), None, "entries are dropped");
    assert!(
        !cache.fill("a".to_string(), 1, 8, 9),
        "a read from before the replacement is refused"
    );
    assert!(
        cache.fill("b".to_string(), 2, 8, 10),
        "a read from after it is cached"
    );
    assert_eq!(cache.get("b"), Some(2));
}
