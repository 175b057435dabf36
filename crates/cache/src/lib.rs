//! A sharded, byte-bounded cache with exact LRU, LFU and FIFO eviction or S3-FIFO,
//! and a read-path `fill` that can never put a value older than a finished write
//! into it.
//!
//! # Shape
//!
//! A [`Cache`] is a power-of-two number of shards, each a `std::sync::Mutex` around
//! a hash map, a slab of entries and the policy's intrusive lists; a key's shard is
//! picked by hashing it. Every operation is O(1). Each shard holds at most
//! `capacity_bytes / shards` bytes, where an entry costs the caller's weight plus
//! [`ENTRY_OVERHEAD_BYTES`]; an entry bigger than a shard is simply not cached.
//! Policies are exact per shard: LRU evicts the least recently used entry, FIFO the
//! oldest insertion, LFU the least used (ties: the least recently used). S3-FIFO
//! (`s3fifo.rs`) keeps keys read more than once in a main queue that one-time reads
//! and scans pass by.
//!
//! # Coherence with the store: `fill` and `invalidate`
//!
//! The cache sits in front of a store that is written elsewhere. A reader that misses
//! reads the store at some snapshot stamp `R` (for hakv, the applied revision) and
//! then offers the value with [`Cache::fill`]. A writer commits revision `W` to the
//! store and then calls [`Cache::invalidate`] with `W`. If the two race like this:
//!
//! ```text
//! reader: get(k) misses; reads store at R = 5 (old value)
//! writer:                                commit W = 6; invalidate(k, 6)
//! reader: fill(k, old value, R = 5)      <- must not cache the old value
//! ```
//!
//! the reader would cache a value the writer has already replaced, and every later
//! reader would get it. So each shard keeps a *write stamp*, raised by `invalidate`
//! to `max(current, W)`, and `fill` inserts only when `R >= write stamp`: nothing
//! written to that shard after the reader's snapshot has been invalidated yet. The
//! check and the insert happen under the shard lock, and the write stamp never goes
//! down, not even on [`Cache::clear`].
//!
//! The stamp is per shard, not per key, because remembering stamps of absent keys
//! would be unbounded memory; the price is that a write to one key also refuses
//! concurrent older fills of its shard-mates, which only costs a later miss.
//!
//! Two more rules close the gaps a write stamp alone leaves while a write is between
//! its store commit and its `invalidate`, when readers may see either value:
//! - a fill with a newer snapshot than a cached filled value removes that value
//!   (and takes its place if the write stamp allows); a fill never replaces a value
//!   from the same or a newer snapshot, nor one written by [`Cache::put`];
//! - when a filled value leaves the cache (evicted, removed, replaced, cleared, or
//!   refused for its size), the write stamp rises to that value's snapshot, so a
//!   slower reader cannot bring back an older value in its place.
//!
//! Together: once any reader has returned a value (or a write has finished its
//! `invalidate`), no later `get` returns an older one. `tests/coherence.rs` checks
//! this with concurrent writers and readers.
//!
//! ```
//! use std::sync::Arc;
//! use hakv_cache::{Cache, CacheConfig};
//!
//! let cache: Cache<String, Arc<str>> = Cache::new(CacheConfig::default());
//! // Read path: on a miss, read the store at its current revision, then offer the value.
//! let value = cache.get("k").unwrap_or_else(|| {
//!     let (revision, value): (u64, Arc<str>) = (7, Arc::from("from the store"));
//!     cache.fill("k".to_owned(), value.clone(), value.len() as u64, revision);
//!     value
//! });
//! assert_eq!(&*value, "from the store");
//! // Write path: after the store has applied revision 8 to "k".
//! cache.invalidate("k", 8);
//! assert!(cache.get("k").is_none());
//! // A reader that read before revision 8 cannot bring the old value back.
//! assert!(!cache.fill("k".to_owned(), value, 14, 7));
//! ```
//!
//! [`Cache::put`] is unconditional and knows no stamps: use it when the caller owns
//! the data (tests, benchmarks, a cache not backed by a store). The write path of a
//! store-backed cache calls `invalidate`, and the read path `fill`.

mod config;
mod doorkeeper;
mod fifo;
mod ghost;
mod lfu;
mod linked_list;
mod lru;
mod order;
mod s3fifo;
mod shard;
mod sketch;
mod slab;
mod stats;

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard};

pub use config::{
    Admission, CacheConfig, ConfigError, ENTRY_OVERHEAD_BYTES, MAX_SHARDS, ParsePolicyError, Policy,
};
pub use stats::CacheStats;

use doorkeeper::Doorkeeper;
use shard::Shard;

/// A concurrent cache; share it with `Arc<Cache<K, V>>`. See the crate docs.
pub struct Cache<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    /// Present with [`Admission::SecondMiss`].
    doorkeeper: Option<Doorkeeper>,
    /// Hashes keys to shards; each shard's map has its own seed, so the bits used
    /// here say nothing about bucket placement inside the shard.
    hasher: RandomState,
    config: CacheConfig,
}

impl<K: Hash + Eq + Clone, V: Clone> Cache<K, V> {
    /// # Panics
    /// When `config` fails [`CacheConfig::validate`]; use [`Cache::try_new`] for
    /// configuration that comes from users.
    pub fn new(config: CacheConfig) -> Self {
        match Self::try_new(config) {
            Ok(cache) => cache,
            Err(error) => panic!("invalid cache config: {error}"),
        }
    }

    pub fn try_new(config: CacheConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let shard_capacity = config.shard_capacity_bytes();
        let shards = (0..config.shards)
            .map(|_| Mutex::new(Shard::new(config.policy, shard_capacity)))
            .collect();
        let doorkeeper = (config.admission == Admission::SecondMiss)
            .then(|| Doorkeeper::for_capacity(config.capacity_bytes));
        Ok(Cache {
            shards,
            doorkeeper,
            hasher: RandomState::new(),
            config,
        })
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The cached value, counting a hit or a miss; a hit also counts as a use for
    /// the eviction policy.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).get(key)
    }

    /// Whether `key` is cached, without counting a lookup or a use.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).contains(key)
    }

    /// Inserts or replaces `key` unconditionally, evicting per policy until it fits.
    /// `weight` is the value's size in bytes as the caller counts it. A replaced
    /// entry's history (recency, use count) goes with it. An entry heavier than a
    /// shard is not cached, and any older value of `key` is removed.
    pub fn put(&self, key: K, value: V, weight: u64) {
        let hash = self.hasher.hash_one(&key);
        self.shard_of(hash).put(key, value, weight, hash);
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).remove(key);
    }

    /// Called by the write path after committing `key` at `write_stamp` to the store:
    /// removes `key` and makes its shard refuse fills from snapshots older than
    /// `write_stamp`.
    pub fn invalidate<Q>(&self, key: &Q, write_stamp: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).invalidate(key, write_stamp);
    }

    /// Called by the read path after a miss, with the value read from the store at
    /// snapshot `read_stamp`. Inserts only if no write to the shard newer than the
    /// snapshot has been invalidated and no newer value is cached; returns whether
    /// it inserted. See the crate docs for why.
    /// With [`Admission::SecondMiss`], a key's first miss is only remembered.
    pub fn fill(&self, key: K, value: V, weight: u64, read_stamp: u64) -> bool {
        let hash = self.hasher.hash_one(&key);
        if let Some(doorkeeper) = &self.doorkeeper
            && !doorkeeper.seen_before(hash)
        {
            return false;
        }
        self.shard_of(hash).fill(key, value, weight, read_stamp, hash)
    }

    pub fn stats(&self) -> CacheStats {
        let mut stats = CacheStats::default();
        for index in 0..self.shards.len() {
            self.lock(index).add_to(&mut stats);
        }
        stats
    }

    /// Called when the whole store was replaced at `write_stamp` (a snapshot install):
    /// drops every entry and makes every shard refuse fills from older snapshots.
    pub fn invalidate_all(&self, write_stamp: u64) {
        for index in 0..self.shards.len() {
            self.lock(index).invalidate_all(write_stamp);
        }
    }

    /// Drops every entry; counters and write stamps are kept.
    pub fn clear(&self) {
        for index in 0..self.shards.len() {
            self.lock(index).clear();
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, Shard<K, V>> {
        self.shard_of(self.hasher.hash_one(key))
    }

    fn shard_of(&self, hash: u64) -> MutexGuard<'_, Shard<K, V>> {
        // The mask keeps the low bits; `validate` made the shard count a power of two.
        self.lock(hash as usize & (self.shards.len() - 1))
    }

    /// A panic under the lock (in a key's `Hash`, `Eq` or `Clone`) may have left the
    /// shard half-updated. A cache may always forget, so the shard is emptied and
    /// used again rather than failing every later call.
    fn lock(&self, index: usize) -> MutexGuard<'_, Shard<K, V>> {
        let mutex = &self.shards[index];
        mutex.lock().unwrap_or_else(|poisoned| {
            let mut shard = poisoned.into_inner();
            shard.clear();
            mutex.clear_poison();
            shard
        })
    }
}

impl<K, V> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
