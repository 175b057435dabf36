//! Exact least-recently-used order: one list, most recently used at the back.

use crate::linked_list::{Link, List, ensure_slot};

#[derive(Default)]
pub(crate) struct Lru {
    links: Vec<Link>,
    recency: List,
}

impl Lru {
    pub(crate) fn insert(&mut self, slot: u32) {
        ensure_slot(&mut self.links, slot);
        self.recency.push_back(&mut self.links, slot);
    }

    pub(crate) fn touch(&mut self, slot: u32) {
        self.recency.move_to_back(&mut self.links, slot);
    }

    pub(crate) fn remove(&mut self, slot: u32) {
        self.recency.unlink(&mut self.links, slot);
    }

    pub(crate) fn victim(&self) -> Option<u32> {
        self.recency.front()
    }

    pub(crate) fn clear(&mut self) {
        self.links.clear();
        self.recency = List::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evicts everything, returning the order in which slots would go.
    fn drain(lru: &mut Lru) -> Vec<u32> {
        let mut order = Vec::new();
        while let Some(slot) = lru.victim() {
            lru.remove(slot);
            order.push(slot);
        }
        order
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let mut lru = Lru::default();
        for slot in 0..4 {
            lru.insert(slot);
        }
        lru.touch(0);
        lru.touch(2);
        lru.touch(0);
        assert_eq!(drain(&mut lru), [1, 3, 2, 0]);
    }

    #[test]
    fn removed_slot_is_never_a_victim_and_can_come_back() {
        let mut lru = Lru::default();
        for slot in [5, 1, 7] {
            lru.insert(slot);
        }
        lru.remove(5);
        lru.insert(5);
        assert_eq!(drain(&mut lru), [1, 7, 5]);
    }
}
