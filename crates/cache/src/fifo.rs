//! First-in-first-out order: entries leave in insertion order, reads change nothing.

use crate::linked_list::{Link, List, ensure_slot};

#[derive(Default)]
pub(crate) struct Fifo {
    links: Vec<Link>,
    arrivals: List,
}

impl Fifo {
    pub(crate) fn insert(&mut self, slot: u32) {
        ensure_slot(&mut self.links, slot);
        self.arrivals.push_back(&mut self.links, slot);
    }

    /// A hit does not matter to FIFO; kept so every policy has the same shape.
    pub(crate) fn touch(&mut self, _slot: u32) {}

    pub(crate) fn remove(&mut self, slot: u32) {
        self.arrivals.unlink(&mut self.links, slot);
    }

    pub(crate) fn victim(&self) -> Option<u32> {
        self.arrivals.front()
    }

    pub(crate) fn clear(&mut self) {
        self.links.clear();
        self.arrivals = List::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(fifo: &mut Fifo) -> Vec<u32> {
        let mut order = Vec::new();
        while let Some(slot) = fifo.victim() {
            fifo.remove(slot);
            order.push(slot);
        }
        order
    }

    #[test]
    fn evicts_in_insertion_order_whatever_is_read() {
        let mut fifo = Fifo::default();
        for slot in [3, 0, 2, 1] {
            fifo.insert(slot);
        }
        fifo.touch(3);
        fifo.touch(3);
        fifo.remove(2);
        assert_eq!(drain(&mut fifo), [3, 0, 1]);
    }
}
