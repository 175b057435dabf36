//! Admission on the second miss (TinyLFU's doorkeeper): a fill is refused the first time a
//! key misses since the last reset, and accepted the next time. A key read once (uniform reads
//! over a state far larger than the cache, one pass of a scan) then never evicts a value that
//! is read again and again, and the cache stops paying an insert and an eviction per miss.
//!
//! It is a bit set indexed by the key's hash, lock-free, reset after as many first misses as
//! an eighth of its bits (so about one in eight first misses is let through early).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub(crate) struct Doorkeeper {
    words: Box<[AtomicU64]>,
    /// Bits minus one (a power of two).
    mask: u64,
    first_misses: AtomicUsize,
    reset_after: usize,
}

impl Doorkeeper {
    /// Sized for a cache of `capacity_bytes`: about a bit per 64 bytes, 2^16 to 2^24 bits.
    pub(crate) fn for_capacity(capacity_bytes: u64) -> Doorkeeper {
        let bits = (capacity_bytes / 64).clamp(1 << 16, 1 << 24).next_power_of_two();
        Doorkeeper {
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits - 1,
            first_misses: AtomicUsize::new(0),
            reset_after: (bits / 8) as usize,
        }
    }

    /// True if `hash` was seen since the last reset; it is remembered either way.
    pub(crate) fn seen_before(&self, hash: u64) -> bool {
        // The high bits: the low ones pick the shard.
        let bit = (hash >> 32 ^ hash.rotate_left(17)) & self.mask;
        let flag = 1u64 << (bit % 64);
        let previous = self.words[(bit / 64) as usize].fetch_or(flag, Ordering::Relaxed);
        if previous & flag != 0 {
            return true;
        }
        if self.first_misses.fetch_add(1, Ordering::Relaxed) + 1 >= self.reset_after {
            self.first_misses.store(0, Ordering::Relaxed);
            for word in self.words.iter() {
                word.store(0, Ordering::Relaxed);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_admitted_on_its_second_miss_and_forgotten_after_a_reset() {
        let door = Doorkeeper::for_capacity(0);
        assert!(!door.seen_before(42));
        assert!(door.seen_before(42));
        // Enough other first misses reset the set.
        let mut h = 1u64;
        loop {
            h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
            door.seen_before(h);
            if door.first_misses.load(Ordering::Relaxed) == 0 {
                break;
            }
        }
        assert!(!door.seen_before(42));
    }
}
