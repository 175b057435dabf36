//! Each policy against a slow, obviously-correct reference model: random sequences
//! of get/put/remove/fill/invalidate/clear on a single shard must leave exactly the
//! same keys resident, return the same values and keep the same byte count.
//!
//! S3-FIFO's victims depend on its queues, use counts and ghost, which the model
//! does not reproduce (its unit tests pin the order in small cases); here the
//! model takes as victims the entries the cache no longer holds, and checks
//! everything else: that the last of them was needed, byte counts, values, coherence.

use hakv_cache::{Cache, CacheConfig, ENTRY_OVERHEAD_BYTES, Policy};
use proptest::prelude::*;

const KEYS: u8 = 12;

#[derive(Clone, Debug)]
enum Op {
    Get(u8),
    Put(u8, u64),
    Remove(u8),
    Fill(u8, u64, u64),
    Invalidate(u8, u64),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    // Mostly small weights, sometimes one that needs several evictions or does not
    // fit at all.
    let weight = prop_oneof![4 => 0..64u64, 1 => 0..(10 * ENTRY_OVERHEAD_BYTES)];
    let stamp = 0..40u64;
    prop_oneof![
        6 => key.clone().prop_map(Op::Get),
        4 => (key.clone(), weight.clone()).prop_map(|(k, w)| Op::Put(k, w)),
        1 => key.clone().prop_map(Op::Remove),
        3 => (key.clone(), weight, stamp.clone()).prop_map(|(k, w, s)| Op::Fill(k, w, s)),
        1 => (key, stamp).prop_map(|(k, s)| Op::Invalidate(k, s)),
        1 => Just(Op::Clear),
    ]
}

struct Entry {
    key: u8,
    value: u32,
    charge: u64,
    /// `None` for a put, the snapshot stamp for a fill.
    fill_stamp: Option<u64>,
    inserted_at: u64,
    last_used: u64,
    uses: u64,
}

/// The cache's contract written the slow way: a `Vec` scanned on every operation.
struct Model {
    policy: Policy,
    capacity: u64,
    entries: Vec<Entry>,
    clock: u64,
    write_stamp: u64,
    newest_fill: u64,
    evictions: u64,
    /// For S3-FIFO: the keys the cache held after the operation being modelled.
    kept_by_cache: Vec<u8>,
}

impl Model {
    fn new(policy: Policy, capacity: u64) -> Self {
        Model {
            policy,
            capacity,
            entries: Vec::new(),
            clock: 0,
            write_stamp: 0,
            newest_fill: 0,
            evictions: 0,
            kept_by_cache: Vec::new(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn position(&self, key: u8) -> Option<usize> {
        self.entries.iter().position(|entry| entry.key == key)
    }

    fn bytes(&self) -> u64 {
        self.entries.iter().map(|entry| entry.charge).sum()
    }

    fn get(&mut self, key: u8) -> Option<u32> {
        let now = self.tick();
        let index = self.position(key)?;
        let entry = &mut self.entries[index];
        entry.last_used = now;
        entry.uses += 1;
        Some(entry.value)
    }

    fn drop_at(&mut self, index: usize) {
        let entry = self.entries.remove(index);
        if let Some(stamp) = entry.fill_stamp {
            self.write_stamp = self.write_stamp.max(stamp);
        }
    }

    fn remove(&mut self, key: u8) {
        if let Some(index) = self.position(key) {
            self.drop_at(index);
        }
    }

    /// S3-FIFO: drops the entries the cache no longer holds, and checks that the
    /// cache evicted only while the newcomer did not fit (its last victim was needed).
    fn evict_what_the_cache_evicted(&mut self, charge: u64) {
        let kept_bytes: u64 = self
            .entries
            .iter()
            .filter(|entry| self.kept_by_cache.contains(&entry.key))
            .map(|entry| entry.charge)
            .sum();
        let largest_victim = self
            .entries
            .iter()
            .filter(|entry| !self.kept_by_cache.contains(&entry.key))
            .map(|entry| entry.charge)
            .max()
            .expect("over capacity, yet the cache kept every older entry");
        assert!(
            kept_bytes + largest_victim + charge > self.capacity,
            "evicted more than needed"
        );
        while let Some(index) =
            (0..self.entries.len()).find(|&index| !self.kept_by_cache.contains(&self.entries[index].key))
        {
            self.drop_at(index);
            self.evictions += 1;
        }
    }

    fn victim(&self) -> usize {
        let order = |entry: &Entry| match self.policy {
            Policy::Lru => (0, entry.last_used),
            Policy::Fifo => (0, entry.inserted_at),
            Policy::Lfu => (entry.uses, entry.last_used),
            Policy::S3Fifo => unreachable!("S3-FIFO takes the cache's victims"),
        };
        (0..self.entries.len())
            .min_by_key(|&index| order(&self.entries[index]))
            .expect("victim of an empty model")
    }

    fn insert(&mut self, key: u8, value: u32, weight: u64, fill_stamp: Option<u64>) -> bool {
        let charge = weight + ENTRY_OVERHEAD_BYTES;
        if charge > self.capacity {
            return false;
        }
        if self.policy == Policy::S3Fifo && self.bytes() + charge > self.capacity {
            self.evict_what_the_cache_evicted(charge);
        }
        while self.bytes() + charge > self.capacity {
            let victim = self.victim();
            self.drop_at(victim);
            self.evictions += 1;
        }
        let now = self.tick();
        self.entries.push(Entry {
            key,
            value,
            charge,
            fill_stamp,
            inserted_at: now,
            last_used: now,
            uses: 1,
        });
        true
    }

    fn put(&mut self, key: u8, value: u32, weight: u64) {
        self.remove(key);
        self.insert(key, value, weight, None);
    }

    fn fill(&mut self, key: u8, value: u32, weight: u64, stamp: u64) -> bool {
        if let Some(index) = self.position(key) {
            match self.entries[index].fill_stamp {
                Some(cached) if cached < stamp => self.drop_at(index),
                _ => return false,
            }
        }
        if stamp < self.write_stamp {
            return false;
        }
        let inserted = self.insert(key, value, weight, Some(stamp));
        if inserted {
            self.newest_fill = self.newest_fill.max(stamp);
        } else {
            self.write_stamp = self.write_stamp.max(stamp);
        }
        inserted
    }

    fn invalidate(&mut self, key: u8, stamp: u64) {
        self.write_stamp = self.write_stamp.max(stamp);
        self.remove(key);
    }

    fn clear(&mut self) {
        self.write_stamp = self.write_stamp.max(self.newest_fill);
        self.newest_fill = 0;
        self.entries.clear();
    }
}

fn check(policy: Policy, capacity: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let cache: Cache<u8, u32> = Cache::new(CacheConfig {
        policy,
        capacity_bytes: capacity,
        shards: 1,
        admission: Default::default(),
    });
    let mut model = Model::new(policy, capacity);
    for (step, op) in ops.iter().enumerate() {
        let value = step as u32;
        match *op {
            Op::Get(key) => prop_assert_eq!(cache.get(&key), model.get(key), "{:?}", op),
            Op::Put(key, weight) => {
                cache.put(key, value, weight);
                model.kept_by_cache = resident(&cache);
                model.put(key, value, weight);
            }
            Op::Remove(key) => {
                cache.remove(&key);
                model.remove(key);
            }
            Op::Fill(key, weight, stamp) => {
                let filled = cache.fill(key, value, weight, stamp);
                model.kept_by_cache = resident(&cache);
                prop_assert_eq!(filled, model.fill(key, value, weight, stamp), "{:?}", op);
            }
            Op::Invalidate(key, stamp) => {
                cache.invalidate(&key, stamp);
                model.invalidate(key, stamp);
            }
            Op::Clear => {
                cache.clear();
                model.clear();
            }
        }
        let resident = resident(&cache);
        let mut expected: Vec<u8> = model.entries.iter().map(|entry| entry.key).collect();
        expected.sort_unstable();
        prop_assert_eq!(resident, expected, "after step {} {:?}", step, op);
        let stats = cache.stats();
        prop_assert_eq!(stats.bytes, model.bytes());
        prop_assert!(stats.bytes <= capacity);
        prop_assert_eq!(stats.entries, model.entries.len() as u64);
        prop_assert_eq!(stats.evictions, model.evictions);
    }
    Ok(())
}

fn resident(cache: &Cache<u8, u32>) -> Vec<u8> {
    (0..KEYS).filter(|k| cache.contains_key(k)).collect()
}

fn capacity() -> impl Strategy<Value = u64> {
    // Room for one to eight weightless entries, plus some slack so weights matter.
    (1..=8u64, 0..ENTRY_OVERHEAD_BYTES).prop_map(|(n, slack)| n * ENTRY_OVERHEAD_BYTES + slack)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lru_matches_the_model(capacity in capacity(), ops in prop::collection::vec(op(), 1..200)) {
        check(Policy::Lru, capacity, &ops)?;
    }

    #[test]
    fn lfu_matches_the_model(capacity in capacity(), ops in prop::collection::vec(op(), 1..200)) {
        check(Policy::Lfu, capacity, &ops)?;
    }

    #[test]
    fn fifo_matches_the_model(capacity in capacity(), ops in prop::collection::vec(op(), 1..200)) {
        check(Policy::Fifo, capacity, &ops)?;
    }

    #[test]
    fn s3fifo_matches_the_model(capacity in capacity(), ops in prop::collection::vec(op(), 1..200)) {
        check(Policy::S3Fifo, capacity, &ops)?;
    }
}
