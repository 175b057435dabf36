//! The search's memory of configurations already explored, so no dead end is walked twice.
//!
//! A configuration is the set of operations placed so far and the register state. Operations
//! of unknown outcome are optional (they may never have taken effect), so having placed
//! fewer of them can only leave more ways to go on: a configuration is skipped if one with
//! the same placed known operations and state, and a subset of its unknown ones, was
//! explored before. Without this, every subset of pending unknown writes is a new
//! configuration and the search is exponential in their number.

use crate::model::State;
use std::collections::HashMap;

/// A set of operation slots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Bitset(Box<[u64]>);

impl Bitset {
    pub fn new(len: usize) -> Bitset {
        Bitset(vec![0; len.div_ceil(64)].into_boxed_slice())
    }

    pub fn flip(&mut self, slot: usize) {
        self.0[slot / 64] ^= 1 << (slot % 64);
    }

    fn is_subset_of(&self, other: &Bitset) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }
}

/// Explored configurations: (placed known operations, state) -> the minimal sets of placed
/// unknown operations it was explored with.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    explored: HashMap<(Bitset, State), Vec<Bitset>>,
}

impl Memo {
    /// Records the configuration; false if it (or one that dominates it) was explored.
    pub fn visit(&mut self, known: &Bitset, unknown: &Bitset, state: State) -> bool {
        let minimal = self.explored.entry((known.clone(), state)).or_default();
        if minimal.iter().any(|seen| seen.is_subset_of(unknown)) {
            return false;
        }
        minimal.retain(|seen| !unknown.is_subset_of(seen));
        minimal.push(unknown.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(slots: &[usize]) -> Bitset {
        let mut bits = Bitset::new(130);
        slots.iter().for_each(|&s| bits.flip(s));
        bits
    }

    #[test]
    fn more_unknown_operations_placed_is_dominated_by_fewer() {
        let mut memo = Memo::default();
        let known = set(&[1]);
        assert!(memo.visit(&known, &set(&[3, 129]), State::INITIAL));
        assert!(!memo.visit(&known, &set(&[3, 129]), State::INITIAL), "seen");
        assert!(
            !memo.visit(&known, &set(&[3, 64, 129]), State::INITIAL),
            "dominated"
        );
        assert!(
            memo.visit(&known, &set(&[3]), State::INITIAL),
            "fewer unknown ones placed"
        );
        assert!(
            memo.visit(&set(&[2]), &set(&[3]), State::INITIAL),
            "other known ones"
        );
        assert!(
            !memo.visit(&known, &set(&[3, 129]), State::INITIAL),
            "now dominated by [3]"
        );
    }
}
