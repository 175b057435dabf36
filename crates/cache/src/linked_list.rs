//! Intrusive doubly-linked lists threaded through a `Vec<Link>` by `u32` index.
//!
//! The links live in an arena owned by the caller, not in the list, so one arena can
//! hold many lists at once (LFU keeps one list per frequency bucket over the same
//! arena) and every operation is O(1) with no allocation beyond the arena itself.

/// "No node": the end of a list. `u32::MAX` can never be a slot, because the arena
/// would need 2^32 entries first and [`crate::slab::Slab`] refuses to grow that far.
pub(crate) const NIL: u32 = u32::MAX;

/// The neighbours of one node. A node that is in no list has both set to [`NIL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

impl Link {
    pub(crate) const DETACHED: Link = Link { prev: NIL, next: NIL };
}

/// Makes sure `links[index]` exists, so policies can accept any slot the shard's
/// slab hands out without being told its size in advance.
pub(crate) fn ensure_slot(links: &mut Vec<Link>, index: u32) {
    let needed = index as usize + 1;
    if links.len() < needed {
        links.resize(needed, Link::DETACHED);
    }
}

/// Head and tail of one list. Front = oldest / next to evict, back = newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct List {
    head: u32,
    tail: u32,
}

impl Default for List {
    fn default() -> Self {
        List { head: NIL, tail: NIL }
    }
}

impl List {
    pub(crate) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// The node after `index` in whichever list it is in.
    pub(crate) fn next(links: &[Link], index: u32) -> Option<u32> {
        let next = links[index as usize].next;
        (next != NIL).then_some(next)
    }

    pub(crate) fn push_back(&mut self, links: &mut [Link], index: u32) {
        links[index as usize] = Link {
            prev: self.tail,
            next: NIL,
        };
        match self.tail {
            NIL => self.head = index,
            tail => links[tail as usize].next = index,
        }
        self.tail = index;
    }

    pub(crate) fn push_front(&mut self, links: &mut [Link], index: u32) {
        links[index as usize] = Link {
            prev: NIL,
            next: self.head,
        };
        match self.head {
            NIL => self.tail = index,
            head => links[head as usize].prev = index,
        }
        self.head = index;
    }

    /// Puts `index` right after `anchor`, which must be in this list.
    pub(crate) fn insert_after(&mut self, links: &mut [Link], anchor: u32, index: u32) {
        let next = links[anchor as usize].next;
        links[index as usize] = Link { prev: anchor, next };
        links[anchor as usize].next = index;
        match next {
            NIL => self.tail = index,
            next => links[next as usize].prev = index,
        }
    }

    /// Takes `index` out of this list; it must be in it.
    pub(crate) fn unlink(&mut self, links: &mut [Link], index: u32) {
        let Link { prev, next } = links[index as usize];
        match prev {
            NIL => self.head = next,
            prev => links[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => links[next as usize].prev = prev,
        }
        links[index as usize] = Link::DETACHED;
    }

    pub(crate) fn move_to_back(&mut self, links: &mut [Link], index: u32) {
        if self.tail != index {
            self.unlink(links, index);
            self.push_back(links, index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(list: &List, links: &[Link]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cursor = list.front();
        while let Some(index) = cursor {
            assert!(out.len() <= links.len(), "cycle in list");
            out.push(index);
            cursor = List::next(links, index);
        }
        out
    }

    #[test]
    fn push_unlink_and_move_keep_order_and_both_directions_consistent() {
        let mut links = Vec::new();
        ensure_slot(&mut links, 4);
        let mut list = List::default();
        list.push_back(&mut links, 1);
        list.push_back(&mut links, 2);
        list.push_front(&mut links, 0);
        list.insert_after(&mut links, 2, 3);
        list.insert_after(&mut links, 0, 4);
        assert_eq!(collect(&list, &links), [0, 4, 1, 2, 3]);

        list.unlink(&mut links, 0);
        list.unlink(&mut links, 3);
        list.move_to_back(&mut links, 4);
        assert_eq!(collect(&list, &links), [1, 2, 4]);
        assert_eq!(links[0], Link::DETACHED);
        assert_eq!(links[1].prev, NIL);
        assert_eq!(links[4].prev, 2);

        for index in [1, 2, 4] {
            list.unlink(&mut links, index);
        }
        assert!(list.is_empty());
        assert_eq!(list, List::default());
    }
}
