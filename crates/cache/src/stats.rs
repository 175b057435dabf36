//! Counters and gauges a cache reports, summed over its shards.

/// A snapshot of a cache's counters (since it was built) and gauges (right now).
///
/// Each shard is read under its own lock, one after another, so the sums are not an
/// atomic snapshot of the whole cache while writers are running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `get` calls that found the key.
    pub hits: u64,
    /// `get` calls that did not.
    pub misses: u64,
    /// Entries dropped to make room (not removals, invalidations or replacements).
    pub evictions: u64,
    /// Values stored by `put` or an accepted `fill`, new keys and replacements alike.
    pub inserts: u64,
    /// `fill` calls that stored nothing (stale snapshot, newer value present, too big).
    pub fills_rejected: u64,
    pub entries: u64,
    /// Charged bytes held: caller weights plus the per-entry overhead.
    pub bytes: u64,
    pub capacity_bytes: u64,
}

impl CacheStats {
    /// Hits over lookups, or 0 before the first lookup.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}
