//! The eviction order of one shard: a closed enum over the built-in policies, so the
//! hot path is a `match`, not a virtual call, and policies share one small interface
//! over slab slots (insert, touch on a hit, remove, name the next victim).

use crate::config::Policy;
use crate::fifo::Fifo;
use crate::lfu::Lfu;
use crate::lru::Lru;

pub(crate) enum Order {
    Lru(Lru),
    Lfu(Lfu),
    Fifo(Fifo),
}

impl Order {
    pub(crate) fn new(policy: Policy) -> Self {
        match policy {
            Policy::Lru => Order::Lru(Lru::default()),
            Policy::Lfu => Order::Lfu(Lfu::default()),
            Policy::Fifo => Order::Fifo(Fifo::default()),
        }
    }

    pub(crate) fn insert(&mut self, slot: u32) {
        match self {
            Order::Lru(lru) => lru.insert(slot),
            Order::Lfu(lfu) => lfu.insert(slot),
            Order::Fifo(fifo) => fifo.insert(slot),
        }
    }

    pub(crate) fn touch(&mut self, slot: u32) {
        match self {
            Order::Lru(lru) => lru.touch(slot),
            Order::Lfu(lfu) => lfu.touch(slot),
            Order::Fifo(fifo) => fifo.touch(slot),
        }
    }

    pub(crate) fn remove(&mut self, slot: u32) {
        match self {
            Order::Lru(lru) => lru.remove(slot),
            Order::Lfu(lfu) => lfu.remove(slot),
            Order::Fifo(fifo) => fifo.remove(slot),
        }
    }

    pub(crate) fn victim(&self) -> Option<u32> {
        match self {
            Order::Lru(lru) => lru.victim(),
            Order::Lfu(lfu) => lfu.victim(),
            Order::Fifo(fifo) => fifo.victim(),
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Order::Lru(lru) => lru.clear(),
            Order::Lfu(lfu) => lfu.clear(),
            Order::Fifo(fifo) => fifo.clear(),
        }
    }
}
