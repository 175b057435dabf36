//! A slab: values stored in a `Vec` and named by stable `u32` slots, with freed slots
//! reused through a free list so a full cache does not allocate on every insert.

use crate::linked_list::NIL;

enum Slot<T> {
    Occupied(T),
    /// Next free slot, or [`NIL`].
    Vacant(u32),
}

pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free_head: u32,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free_head: NIL,
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// # Panics
    /// When 2^32 - 1 values are live at once: slot numbers are `u32` to halve the
    /// size of every link, and [`NIL`] must stay free to mean "none".
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        if self.free_head != NIL {
            let index = self.free_head;
            let slot = &mut self.slots[index as usize];
            let Slot::Vacant(next_free) = *slot else {
                unreachable!("free list points at an occupied slot");
            };
            self.free_head = next_free;
            *slot = Slot::Occupied(value);
            return index;
        }
        let index = u32::try_from(self.slots.len())
            .ok()
            .filter(|&index| index != NIL)
            .expect("slab is limited to u32::MAX - 1 slots");
        self.slots.push(Slot::Occupied(value));
        index
    }

    /// # Panics
    /// When `index` is not occupied: that is a bookkeeping bug in the caller.
    pub(crate) fn remove(&mut self, index: u32) -> T {
        let slot = std::mem::replace(&mut self.slots[index as usize], Slot::Vacant(self.free_head));
        let Slot::Occupied(value) = slot else {
            panic!("slab slot {index} removed twice");
        };
        self.free_head = index;
        self.len -= 1;
        value
    }

    pub(crate) fn get(&self, index: u32) -> &T {
        match &self.slots[index as usize] {
            Slot::Occupied(value) => value,
            Slot::Vacant(_) => panic!("slab slot {index} is vacant"),
        }
    }

    pub(crate) fn get_mut(&mut self, index: u32) -> &mut T {
        match &mut self.slots[index as usize] {
            Slot::Occupied(value) => value,
            Slot::Vacant(_) => panic!("slab slot {index} is vacant"),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.free_head = NIL;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_most_recent_first() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        let b = slab.insert("b");
        let c = slab.insert("c");
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(slab.remove(a), "a");
        assert_eq!(slab.remove(c), "c");
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.insert("d"), c);
        assert_eq!(slab.insert("e"), a);
        assert_eq!(slab.insert("f"), 3);
        *slab.get_mut(b) = "B";
        assert_eq!(*slab.get(b), "B");
        assert_eq!(slab.len(), 4);
    }

    #[test]
    #[should_panic(expected = "removed twice")]
    fn double_remove_is_caught() {
        let mut slab = Slab::default();
        let a = slab.insert(1);
        slab.remove(a);
        slab.remove(a);
    }
}
