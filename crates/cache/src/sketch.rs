//! A count-min sketch of 4-bit counters (TinyLFU's frequency sketch, Einziger et al., 2017):
//! how often each key hash was counted lately, in 8 bytes per entry a shard can hold.
//!
//! Each hash increments four counters, one per row, and its estimate is the least of
//! them, so collisions can only over-count. Counters saturate at 15. After
//! `HALVING_ENTRIES` additions per entry every counter is halved: counts decay, and a
//! key that stops being counted is forgotten after a few halvings.

use crate::config::ENTRY_OVERHEAD_BYTES;

/// The sketch is halved after this many additions per entry the shard can hold
/// (TinyLFU's sample size, 10 in the paper and in Caffeine). Measured on the bench's
/// traces with S3-FIFO's check at main's door: 5 gives back the zipf gains, 20 and 40
/// win a little more on zipf but lose on the shifting hot set, whose new hot keys
/// must outgrow the old ones' counts.
const HALVING_ENTRIES: u64 = 10;
/// Sized for at most this many entries (8 MiB of counters): a shard of more than
/// 64 GiB still works, with more collisions, instead of allocating an eighth of its
/// budget up front.
const MAX_ENTRIES: u64 = 1 << 20;
/// A word holds sixteen 4-bit counters; four rows share the words.
const COUNTERS_PER_WORD: u32 = 16;
const COUNTER_MAX: u64 = 15;
/// Every counter's low three bits, so that a shifted word does not carry a bit from
/// one counter into the next.
const HALVING_MASK: u64 = 0x7777_7777_7777_7777;
/// One odd multiplier per row (and the next row's as a second), to pick independent
/// counters for the four rows.
const SEEDS: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
];

pub(crate) struct Sketch {
    /// Sixteen 4-bit counters per word; a power of two of words.
    words: Vec<u64>,
    /// Words minus one.
    mask: u64,
    /// Additions since the last halving (halved with the counters).
    additions: u64,
    /// The counters are halved when `additions` reaches this.
    sample: u64,
}

impl Sketch {
    /// A sketch for a shard of `capacity_bytes`. Every entry is charged at least
    /// `ENTRY_OVERHEAD_BYTES`, so the shard holds at most `capacity_bytes /
    /// ENTRY_OVERHEAD_BYTES` entries (all of them when values weigh nothing); the
    /// sketch has a word, 16 counters, per such entry (rounded up to a power of two,
    /// at most `MAX_ENTRIES`): 8 to 16 bytes per 64 bytes of budget, and the
    /// halving period follows the same count.
    pub(crate) fn for_capacity(capacity_bytes: u64) -> Self {
        let entries = (capacity_bytes / ENTRY_OVERHEAD_BYTES).clamp(1, MAX_ENTRIES);
        Sketch::new(entries as usize, entries * HALVING_ENTRIES)
    }

    /// At least `words` words (8 at least), halved after `sample` additions.
    fn new(words: usize, sample: u64) -> Self {
        let words = words.max(8).next_power_of_two();
        Sketch {
            words: vec![0; words],
            mask: words as u64 - 1,
            additions: 0,
            sample: sample.max(1),
        }
    }

    /// The word and the counter's shift within it for `hash` in row `row`.
    fn position(&self, hash: u64, row: usize) -> (usize, u32) {
        let mixed = (hash ^ SEEDS[row]).wrapping_mul(SEEDS[(row + 1) % SEEDS.len()]);
        let mixed = mixed ^ (mixed >> 29);
        let word = (mixed >> 8) & self.mask;
        let counter = (mixed >> 60) as u32 % COUNTERS_PER_WORD;
        (word as usize, counter * 4)
    }

    /// How often `hash` was counted lately: at least its true count since the last
    /// halving (halved with them), at most 15.
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        (0..SEEDS.len())
            .map(|row| {
                let (word, shift) = self.position(hash, row);
                ((self.words[word] >> shift) & COUNTER_MAX) as u8
            })
            .min()
            .unwrap_or(0)
    }

    /// Counts `hash` once more; may halve every counter (O(words), once per `sample`
    /// additions, so O(1) amortized).
    pub(crate) fn increment(&mut self, hash: u64) {
        let mut added = false;
        for row in 0..SEEDS.len() {
            let (word, shift) = self.position(hash, row);
            if (self.words[word] >> shift) & COUNTER_MAX < COUNTER_MAX {
                self.words[word] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.sample {
                self.halve();
            }
        }
    }

    fn halve(&mut self) {
        for word in &mut self.words {
            *word = (*word >> 1) & HALVING_MASK;
        }
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spreads small keys over the hash space, as the cache's hasher does.
    fn hash(key: u64) -> u64 {
        let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h ^ (h >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
    }

    #[test]
    fn counts_each_key_and_never_under_counts() {
        let mut sketch = Sketch::new(1024, u64::MAX);
        for key in 0..900u64 {
            for _ in 0..key % 5 {
                sketch.increment(hash(key));
            }
        }
        let mut exact = 0;
        for key in 0..900u64 {
            let estimate = u64::from(sketch.frequency(hash(key)));
            assert!(estimate >= key % 5, "key {key}: {estimate}");
            exact += usize::from(estimate == key % 5);
        }
        // 1 800 additions in 16 384 counters per row: collisions in all four rows
        // are rare.
        assert!(exact >= 890, "{exact} of 900 exact");
        assert_eq!(sketch.frequency(hash(1_000_000)), 0);
    }

    #[test]
    fn counters_saturate_at_15() {
        let mut sketch = Sketch::new(64, u64::MAX);
        for _ in 0..100 {
            sketch.increment(hash(7));
        }
        assert_eq!(sketch.frequency(hash(7)), 15);
        // Increments that change no counter do not count toward the halving.
        assert_eq!(sketch.additions, 15);
        // The neighbours of saturated counters are untouched.
        assert_eq!(sketch.frequency(hash(8)), 0);
    }

    #[test]
    fn counts_are_halved_after_the_sample_and_age_out() {
        let mut sketch = Sketch::new(1024, 100);
        for _ in 0..12 {
            sketch.increment(hash(1));
        }
        for _ in 0..5 {
            sketch.increment(hash(2));
        }
        assert_eq!(sketch.frequency(hash(1)), 12);
        // 83 more additions reach the sample of 100: every counter is halved.
        for key in 100..183 {
            sketch.increment(hash(key));
        }
        assert_eq!(sketch.additions, 50);
        assert_eq!(sketch.frequency(hash(1)), 6);
        assert_eq!(sketch.frequency(hash(2)), 2);
        // 50 more: halved again.
        for key in 1000..1050 {
            sketch.increment(hash(key));
        }
        assert_eq!(sketch.frequency(hash(1)), 3);
        assert_eq!(sketch.frequency(hash(2)), 1);
        // A key no longer counted is forgotten after a few more halvings.
        for key in 2000..2150 {
            sketch.increment(hash(key));
        }
        assert_eq!(sketch.frequency(hash(1)), 0);
        assert_eq!(sketch.frequency(hash(2)), 0);
    }

    #[test]
    fn memory_follows_the_byte_budget_and_is_bounded() {
        // 1 000 entries of 64 bytes: 1 024 words (8 KiB), halved every 10 000.
        let sketch = Sketch::for_capacity(1000 * ENTRY_OVERHEAD_BYTES);
        assert_eq!(sketch.words.len(), 1024);
        assert_eq!(sketch.sample, 10_000);
        // A shard too small for one entry still gets a tiny working sketch.
        let tiny = Sketch::for_capacity(0);
        assert_eq!(tiny.words.len(), 8);
        assert_eq!(tiny.sample, HALVING_ENTRIES);
        // A huge budget is capped, not allocated.
        let huge = Sketch::for_capacity(u64::MAX);
        assert_eq!(huge.words.len() as u64, MAX_ENTRIES);
        assert_eq!(huge.sample, MAX_ENTRIES * HALVING_ENTRIES);
        assert!(huge.words.len() * size_of::<u64>() <= 8 << 20);
    }
}
