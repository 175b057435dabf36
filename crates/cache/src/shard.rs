//! One shard: a hash map from key to slab slot, the entries, their eviction order,
//! the byte budget and the write stamp that keeps read-path fills coherent.
//!
//! Everything here runs under the shard's mutex, so each method is atomic with
//! respect to every other; in particular a fill checks the write stamp and inserts
//! in one step, which is what makes the stamp check sound.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use crate::config::{ENTRY_OVERHEAD_BYTES, Policy};
use crate::order::Order;
use crate::slab::Slab;
use crate::stats::CacheStats;

/// Where an entry's value came from, which decides whether a later fill may replace it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// `put`: unconditional, treated as newer than any fill.
    Put,
    /// `fill` by a reader whose store snapshot had this stamp.
    Fill(u64),
}

struct Entry<K, V> {
    key: K,
    value: V,
    charge: u64,
    origin: Origin,
}

#[derive(Default)]
struct Counters {
    hits: u64,
    misses: u64,
    evictions: u64,
    inserts: u64,
    fills_rejected: u64,
}

pub(crate) struct Shard<K, V> {
    map: HashMap<K, u32>,
    entries: Slab<Entry<K, V>>,
    order: Order,
    bytes: u64,
    capacity: u64,
    /// Fills with a snapshot older than this are refused. Raised by `invalidate` to
    /// the write's stamp, and whenever a filled value leaves the cache to that
    /// value's snapshot stamp (see `forget`). Never lowered, not even by `clear`.
    write_stamp: u64,
    /// The newest snapshot stamp of any fill accepted since the last `clear`, so
    /// `clear` can raise `write_stamp` without walking the entries.
    newest_fill: u64,
    counters: Counters,
}

impl<K: Hash + Eq + Clone, V: Clone> Shard<K, V> {
    pub(crate) fn new(policy: Policy, capacity: u64) -> Self {
        Shard {
            map: HashMap::new(),
            entries: Slab::default(),
            order: Order::new(policy, capacity),
            bytes: 0,
            capacity,
            write_stamp: 0,
            newest_fill: 0,
            counters: Counters::default(),
        }
    }

    pub(crate) fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(&slot) = self.map.get(key) else {
            self.counters.misses += 1;
            return None;
        };
        self.counters.hits += 1;
        self.order.touch(slot);
        Some(self.entries.get(slot).value.clone())
    }

    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// A put starts a new entry: a replaced value's recency, position or use count
    /// is dropped with it, exactly as if the key had been removed first.
    /// `hash` is the key's hash (the one that chose this shard).
    pub(crate) fn put(&mut self, key: K, value: V, weight: u64, hash: u64) {
        self.remove(&key);
        self.insert(key, value, weight, hash, Origin::Put);
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(slot) = self.map.remove(key) {
            self.forget(slot);
        }
    }

    pub(crate) fn invalidate<Q>(&mut self, key: &Q, write_stamp: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Raise first: if `K`'s `Eq` panics below, the shard is cleared on the next
        // lock and the stamp already refuses stale fills.
        self.write_stamp = self.write_stamp.max(write_stamp);
        self.remove(key);
    }

    pub(crate) fn fill(&mut self, key: K, value: V, weight: u64, read_stamp: u64, hash: u64) -> bool {
        if let Some(&slot) = self.map.get(&key) {
            match self.entries.get(slot).origin {
                // The cached value is older than what this reader read, so some
                // reader may already have returned the newer one: drop the older
                // value even if the stamp check below refuses the newer one.
                Origin::Fill(stamp) if stamp < read_stamp => {
                    self.map.remove(&key);
                    self.forget(slot);
                }
                // Same snapshot or newer, or written by `put`: what is cached is at
                // least as new as what this reader read.
                _ => {
                    self.counters.fills_rejected += 1;
                    return false;
                }
            }
        }
        if read_stamp < self.write_stamp {
            self.counters.fills_rejected += 1;
            return false;
        }
        let inserted = self.insert(key, value, weight, hash, Origin::Fill(read_stamp));
        if inserted {
            self.newest_fill = self.newest_fill.max(read_stamp);
        } else {
            // Too big to cache. This reader saw the value as of `read_stamp`; a
            // slower reader holding an older snapshot must not cache the older value
            // in its place now that nothing newer is here to stop it.
            self.write_stamp = self.write_stamp.max(read_stamp);
            self.counters.fills_rejected += 1;
        }
        inserted
    }

    /// Drops every entry and refuses fills from snapshots older than `write_stamp`.
    pub(crate) fn invalidate_all(&mut self, write_stamp: u64) {
        self.clear();
        self.write_stamp = self.write_stamp.max(write_stamp);
    }

    pub(crate) fn clear(&mut self) {
        self.write_stamp = self.write_stamp.max(self.newest_fill);
        self.newest_fill = 0;
        self.map.clear();
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }

    pub(crate) fn add_to(&self, stats: &mut CacheStats) {
        stats.hits += self.counters.hits;
        stats.misses += self.counters.misses;
        stats.evictions += self.counters.evictions;
        stats.inserts += self.counters.inserts;
        stats.fills_rejected += self.counters.fills_rejected;
        stats.entries += self.entries.len() as u64;
        stats.bytes += self.bytes;
        stats.capacity_bytes += self.capacity;
    }

    /// Stores a key that is not resident, evicting until it fits. Returns false,
    /// storing nothing, when the entry alone is bigger than the shard.
    fn insert(&mut self, key: K, value: V, weight: u64, hash: u64, origin: Origin) -> bool {
        let charge = weight.saturating_add(ENTRY_OVERHEAD_BYTES);
        if charge > self.capacity {
            return false;
        }
        // Evict before inserting, so the newcomer is never its own victim (with LFU
        // it would be: a fresh entry has the lowest possible use count).
        // Written as a subtraction so a capacity near `u64::MAX` cannot overflow.
        while charge > self.capacity - self.bytes {
            let victim = self
                .order
                .victim()
                .expect("bytes are over capacity, so some entry is resident");
            let evicted = self.forget(victim);
            self.map.remove(&evicted.key);
            self.counters.evictions += 1;
        }
        let slot = self.entries.insert(Entry {
            key: key.clone(),
            value,
            charge,
            origin,
        });
        self.map.insert(key, slot);
        self.order.insert(slot, hash, charge);
        self.bytes += charge;
        self.counters.inserts += 1;
        true
    }

    /// Drops the entry in `slot` from the order, the slab and the byte count; the
    /// caller removes it from the map. A filled value that leaves raises the write
    /// stamp to its snapshot: a reader with an older snapshot may hold an older value
    /// of this key, and with the newer one gone nothing else would stop its fill.
    fn forget(&mut self, slot: u32) -> Entry<K, V> {
        self.order.remove(slot);
        let entry = self.entries.remove(slot);
        self.bytes -= entry.charge;
        if let Origin::Fill(stamp) = entry.origin {
            self.write_stamp = self.write_stamp.max(stamp);
        }
        entry
    }
}
