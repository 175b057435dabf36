//! Exact least-frequently-used order in O(1), ties broken by recency.
//!
//! Entries with the same use count share a bucket; each bucket is a list ordered by
//! recency (least recent at the front), and the buckets form a second list ordered by
//! increasing count. A hit moves an entry from bucket `f` to bucket `f + 1`, which is
//! either the next bucket or a new one spliced in right after `f`, so no operation
//! ever searches. The victim is the front of the first bucket: among the least
//! frequently used entries, the least recently used one.

use crate::linked_list::{Link, List, NIL, ensure_slot};
use crate::slab::Slab;

struct Bucket {
    count: u64,
    entries: List,
}

#[derive(Default)]
pub(crate) struct Lfu {
    /// Per entry slot: neighbours inside its bucket.
    entry_links: Vec<Link>,
    /// Per entry slot: the bucket it is in.
    bucket_of: Vec<u32>,
    buckets: Slab<Bucket>,
    /// Per bucket slot: neighbours in the chain of buckets.
    bucket_links: Vec<Link>,
    /// Buckets in increasing count; the front holds the next victim.
    chain: List,
}

impl Lfu {
    pub(crate) fn insert(&mut self, slot: u32) {
        ensure_slot(&mut self.entry_links, slot);
        if self.bucket_of.len() <= slot as usize {
            self.bucket_of.resize(slot as usize + 1, NIL);
        }
        let first = match self.chain.front() {
            Some(bucket) if self.buckets.get(bucket).count == 1 => bucket,
            _ => {
                let bucket = self.new_bucket(1);
                self.chain.push_front(&mut self.bucket_links, bucket);
                bucket
            }
        };
        self.enter(first, slot);
    }

    pub(crate) fn touch(&mut self, slot: u32) {
        let from = self.bucket_of[slot as usize];
        let Some(count) = self.buckets.get(from).count.checked_add(1) else {
            // A saturated count cannot grow; the entry only becomes more recent.
            let entries = &mut self.buckets.get_mut(from).entries;
            entries.move_to_back(&mut self.entry_links, slot);
            return;
        };
        let to = match List::next(&self.bucket_links, from) {
            Some(next) if self.buckets.get(next).count == count => next,
            _ => {
                let bucket = self.new_bucket(count);
                self.chain.insert_after(&mut self.bucket_links, from, bucket);
                bucket
            }
        };
        // `to` exists before `from` may be dropped, so the splice point stays valid.
        self.leave(slot);
        self.enter(to, slot);
    }

    pub(crate) fn remove(&mut self, slot: u32) {
        self.leave(slot);
    }

    pub(crate) fn victim(&self) -> Option<u32> {
        let bucket = self.chain.front()?;
        self.buckets.get(bucket).entries.front()
    }

    pub(crate) fn clear(&mut self) {
        *self = Lfu::default();
    }

    fn new_bucket(&mut self, count: u64) -> u32 {
        let bucket = self.buckets.insert(Bucket {
            count,
            entries: List::default(),
        });
        ensure_slot(&mut self.bucket_links, bucket);
        bucket
    }

    fn enter(&mut self, bucket: u32, slot: u32) {
        let entries = &mut self.buckets.get_mut(bucket).entries;
        entries.push_back(&mut self.entry_links, slot);
        self.bucket_of[slot as usize] = bucket;
    }

    /// Takes `slot` out of its bucket and drops the bucket if that emptied it, so
    /// the chain never holds empty buckets and `victim` needs no search.
    fn leave(&mut self, slot: u32) {
        let bucket = std::mem::replace(&mut self.bucket_of[slot as usize], NIL);
        let entries = &mut self.buckets.get_mut(bucket).entries;
        entries.unlink(&mut self.entry_links, slot);
        if entries.is_empty() {
            self.chain.unlink(&mut self.bucket_links, bucket);
            self.buckets.remove(bucket);
        }
    }

    #[cfg(test)]
    fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(lfu: &mut Lfu) -> Vec<u32> {
        let mut order = Vec::new();
        while let Some(slot) = lfu.victim() {
            lfu.remove(slot);
            order.push(slot);
        }
        order
    }

    #[test]
    fn evicts_least_frequent_first() {
        let mut lfu = Lfu::default();
        for slot in 0..4 {
            lfu.insert(slot);
        }
        // counts: 0 -> 3, 1 -> 1, 2 -> 2, 3 -> 4
        for slot in [0, 0, 2, 3, 3, 3] {
            lfu.touch(slot);
        }
        assert_eq!(drain(&mut lfu), [1, 2, 0, 3]);
    }

    #[test]
    fn ties_go_to_the_least_recently_used() {
        let mut lfu = Lfu::default();
        for slot in 0..4 {
            lfu.insert(slot);
        }
        // All reach count 2, in the order 2, 0, 3, 1.
        for slot in [2, 0, 3, 1] {
            lfu.touch(slot);
        }
        lfu.insert(4);
        assert_eq!(drain(&mut lfu), [4, 2, 0, 3, 1]);
    }

    #[test]
    fn a_new_entry_goes_before_older_entries_of_count_one_only_by_recency() {
        let mut lfu = Lfu::default();
        lfu.insert(0);
        lfu.touch(0);
        lfu.insert(1);
        lfu.insert(2);
        // Count 1: 1 (older), 2 (newer); count 2: 0.
        assert_eq!(drain(&mut lfu), [1, 2, 0]);
    }

    #[test]
    fn empty_buckets_are_dropped() {
        let mut lfu = Lfu::default();
        lfu.insert(0);
        lfu.insert(1);
        for _ in 0..10 {
            lfu.touch(0);
        }
        // Buckets for counts 1 (slot 1) and 11 (slot 0) only.
        assert_eq!(lfu.bucket_count(), 2);
        lfu.remove(1);
        lfu.remove(0);
        assert_eq!(lfu.bucket_count(), 0);
        assert_eq!(lfu.victim(), None);
    }
}
