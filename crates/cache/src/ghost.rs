//! A ghost queue for S3-FIFO: hashes of keys that left one of its queues not long
//! ago, oldest first, bounded in count. Only hashes are kept, so a ghost costs a few
//! words per key whatever the values weigh.

use std::collections::{HashMap, VecDeque};

#[derive(Default)]
pub(crate) struct Ghost {
    /// Hashes in the order they were remembered, each with the sequence number it
    /// got then; an entry whose number no longer matches `live` was taken out early
    /// (or remembered again later) and is skipped when it reaches the front.
    order: VecDeque<(u64, u64)>,
    /// Each remembered hash and the sequence number of its latest remembering.
    live: HashMap<u64, u64>,
    next: u64,
}

impl Ghost {
    /// Hashes currently remembered.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Remembers `hash` as the newest, then forgets the oldest beyond `limit`.
    pub(crate) fn remember(&mut self, hash: u64, limit: usize) {
        self.live.insert(hash, self.next);
        self.order.push_back((hash, self.next));
        self.next += 1;
        self.trim(limit);
    }

    /// Whether `hash` was remembered; if so it is forgotten, because its key is back
    /// in the cache and will be remembered again when it leaves.
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        self.live.remove(&hash).is_some()
    }

    /// Forgets the oldest hashes until at most `limit` are left. Entries taken early
    /// are dropped on the way; the queue is also kept within twice the limit so that
    /// they cannot pile up behind an old live one (which may then be forgotten a
    /// little early).
    pub(crate) fn trim(&mut self, limit: usize) {
        while self.live.len() > limit || self.order.len() > 2 * limit.max(1) {
            let Some((hash, sequence)) = self.order.pop_front() else {
                break;
            };
            if self.live.get(&hash) == Some(&sequence) {
                self.live.remove(&hash);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.live.contains_key(&hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_the_limit() {
        let mut ghost = Ghost::default();
        for hash in 0..5 {
            ghost.remember(hash, 3);
        }
        assert_eq!(ghost.len(), 3);
        assert!(!ghost.contains(1));
        assert!(ghost.contains(2) && ghost.contains(4));
    }

    #[test]
    fn a_taken_hash_is_gone_and_a_re_remembered_one_counts_once() {
        let mut ghost = Ghost::default();
        ghost.remember(1, 10);
        ghost.remember(2, 10);
        assert!(ghost.take(1));
        assert!(!ghost.take(1));
        ghost.remember(2, 10);
        assert_eq!(ghost.len(), 1);
        // The stale first entry of 2 does not forget the newer one.
        ghost.trim(1);
        assert!(ghost.contains(2));
    }
}
