//! The eviction order of one shard: a closed enum over the built-in policies, so the
//! hot path is a `match`, not a virtual call, and policies share one small interface
//! over slab slots (insert, touch on a hit, remove, name the next victim).
//!
//! The simple orders only need slots; S3-FIFO also needs each key's hash (for its
//! ghost queues), each entry's charge and the shard's capacity (its small queue is a
//! byte target within the shard).

use crate::config::Policy;
use crate::fifo::Fifo;
use crate::lfu::Lfu;
use crate::lru::Lru;
use crate::s3fifo::S3Fifo;

// One `Order` per shard, inside its mutex, never in a collection: the bytes an LRU
// shard leaves unused cost nothing, and boxing S3-FIFO would add a pointer chase to
// every hit.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Order {
    Lru(Lru),
    Lfu(Lfu),
    Fifo(Fifo),
    S3Fifo(S3Fifo),
}

impl Order {
    /// `capacity` is the shard's byte budget.
    pub(crate) fn new(policy: Policy, capacity: u64) -> Self {
        match policy {
            Policy::Lru => Order::Lru(Lru::default()),
            Policy::Lfu => Order::Lfu(Lfu::default()),
            Policy::Fifo => Order::Fifo(Fifo::default()),
            Policy::S3Fifo => Order::S3Fifo(S3Fifo::new(capacity)),
        }
    }

    /// `hash` is the key's hash, `charge` the bytes the entry is charged.
    pub(crate) fn insert(&mut self, slot: u32, hash: u64, charge: u64) {
        match self {
            Order::Lru(lru) => lru.insert(slot),
            Order::Lfu(lfu) => lfu.insert(slot),
            Order::Fifo(fifo) => fifo.insert(slot),
            Order::S3Fifo(s3) => s3.insert(slot, hash, charge),
        }
    }

    pub(crate) fn touch(&mut self, slot: u32) {
        match self {
            Order::Lru(lru) => lru.touch(slot),
            Order::Lfu(lfu) => lfu.touch(slot),
            Order::Fifo(fifo) => fifo.touch(slot),
            Order::S3Fifo(s3) => s3.touch(slot),
        }
    }

    pub(crate) fn remove(&mut self, slot: u32) {
        match self {
            Order::Lru(lru) => lru.remove(slot),
            Order::Lfu(lfu) => lfu.remove(slot),
            Order::Fifo(fifo) => fifo.remove(slot),
            Order::S3Fifo(s3) => s3.remove(slot),
        }
    }

    /// The entry to evict next; S3-FIFO may move entries between its queues while
    /// choosing.
    pub(crate) fn victim(&mut self) -> Option<u32> {
        match self {
            Order::Lru(lru) => lru.victim(),
            Order::Lfu(lfu) => lfu.victim(),
            Order::Fifo(fifo) => fifo.victim(),
            Order::S3Fifo(s3) => s3.victim(),
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Order::Lru(lru) => lru.clear(),
            Order::Lfu(lfu) => lfu.clear(),
            Order::Fifo(fifo) => fifo.clear(),
            Order::S3Fifo(s3) => s3.clear(),
        }
    }
}
