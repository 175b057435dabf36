//! What a cache is configured with: its eviction policy, its size in bytes and its
//! shard count, checked once by [`CacheConfig::validate`] before a cache is built.

use std::fmt;
use std::str::FromStr;

/// Bytes charged for every entry on top of the caller's weight.
///
/// It stands for what the cache itself keeps per entry (the slab node with the key and
/// the value handle, the hash-map slot, the policy's links) so that a cache of many
/// tiny values is still bounded in real memory. 64 is a round figure for an `Arc`
/// value and a short key; it is a fixed constant rather than a `size_of` sum so that
/// "how many entries fit" does not change with the key and value types.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// More shards than this buys no extra concurrency on any realistic machine and only
/// fragments the capacity.
pub const MAX_SHARDS: usize = 1024;

/// Which entry to evict when a shard is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Least recently used (a hit or an insert makes an entry the most recent).
    #[default]
    Lru,
    /// Least frequently used; among equally used entries, the least recently used.
    Lfu,
    /// First in, first out: insertion order, hits change nothing.
    Fifo,
    /// S3-FIFO: a small FIFO for new keys in front of a main FIFO with small use
    /// counts, and ghost queues of keys recently evicted from each; the small
    /// queue's size adapts to which ghost keys come back from (`s3fifo.rs`), and a
    /// key back from the small ghost enters main only if a frequency sketch counted
    /// it missing more often than main's next victim. Scans and one-time reads do
    /// not displace keys read again.
    S3Fifo,
}

impl Policy {
    /// Every built-in policy, for menus, tests and benchmarks.
    pub const ALL: [Policy; 4] = [Policy::Lru, Policy::Lfu, Policy::Fifo, Policy::S3Fifo];

    /// The name used on the command line and in [`FromStr`].
    pub const fn as_str(self) -> &'static str {
        match self {
            Policy::Lru => "lru",
            Policy::Lfu => "lfu",
            Policy::Fifo => "fifo",
            Policy::S3Fifo => "s3fifo",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = ParsePolicyError;

    /// Accepts `lru`, `lfu`, `fifo` or `s3fifo`, in any ASCII case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|policy| policy.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| ParsePolicyError {
                name: name.to_owned(),
            })
    }
}

/// A policy name that is not one of `lru`, `lfu`, `fifo`, `s3fifo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsePolicyError {
    name: String,
}

impl fmt::Display for ParsePolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown cache policy {:?}: expected one of lru, lfu, fifo, s3fifo",
            self.name
        )
    }
}

impl std::error::Error for ParsePolicyError {}

/// Configuration of one [`crate::Cache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    pub policy: Policy,
    /// Total bytes over all shards; each shard gets `capacity_bytes / shards`.
    /// Zero disables caching: nothing is ever stored.
    pub capacity_bytes: u64,
    /// Independent locks; a power of two from 1 to [`MAX_SHARDS`].
    pub shards: usize,
    /// When a read-path fill is taken.
    pub admission: Admission,
}

/// When [`Cache::fill`](crate::Cache::fill) caches a value that missed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Admission {
    /// On every miss.
    #[default]
    FirstMiss,
    /// On the key's second miss since the doorkeeper's last reset (`doorkeeper.rs`).
    SecondMiss,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            policy: Policy::Lru,
            capacity_bytes: 64 * 1024 * 1024,
            shards: 16,
            admission: Admission::FirstMiss,
        }
    }
}

impl CacheConfig {
    /// The bytes each shard may hold.
    pub fn shard_capacity_bytes(&self) -> u64 {
        self.capacity_bytes / self.shards.max(1) as u64
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.shards.is_power_of_two() {
            return Err(ConfigError::ShardsNotPowerOfTwo(self.shards));
        }
        if self.shards > MAX_SHARDS {
            return Err(ConfigError::TooManyShards(self.shards));
        }
        // A shard that cannot hold even an empty value is a misconfiguration, not a
        // way to disable the cache (that is `capacity_bytes = 0`).
        let shard_bytes = self.shard_capacity_bytes();
        if self.capacity_bytes > 0 && shard_bytes < ENTRY_OVERHEAD_BYTES {
            return Err(ConfigError::ShardTooSmall {
                shard_bytes,
                shards: self.shards,
            });
        }
        Ok(())
    }
}

/// Why a [`CacheConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Shard choice masks the key's hash, which needs a power of two (and at least 1).
    ShardsNotPowerOfTwo(usize),
    TooManyShards(usize),
    ShardTooSmall {
        shard_bytes: u64,
        shards: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ShardsNotPowerOfTwo(shards) => {
                write!(f, "cache shards must be a power of two, got {shards}")
            }
            ConfigError::TooManyShards(shards) => {
                write!(f, "cache shards must be at most {MAX_SHARDS}, got {shards}")
            }
            ConfigError::ShardTooSmall { shard_bytes, shards } => write!(
                f,
                "cache capacity gives each of {shards} shards {shard_bytes} bytes, less than \
                 the {ENTRY_OVERHEAD_BYTES}-byte overhead of one entry; use fewer shards, \
                 more bytes, or 0 bytes to disable the cache"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip_and_unknown_names_are_explained() {
        for policy in Policy::ALL {
            assert_eq!(policy.to_string().parse::<Policy>(), Ok(policy));
        }
        assert_eq!("LFU".parse::<Policy>(), Ok(Policy::Lfu));
        assert_eq!(Policy::default(), Policy::Lru);
        let error = "arc".parse::<Policy>().unwrap_err().to_string();
        assert!(error.contains("\"arc\""), "{error}");
        assert!(error.contains("lru, lfu, fifo, s3fifo"), "{error}");
        assert_eq!("S3FIFO".parse::<Policy>(), Ok(Policy::S3Fifo));
    }

    #[test]
    fn validate_accepts_defaults_and_refuses_bad_shapes() {
        assert_eq!(CacheConfig::default().validate(), Ok(()));
        let with = |capacity_bytes, shards| CacheConfig {
            policy: Policy::Lru,
            capacity_bytes,
            shards,
            admission: Default::default(),
        };
        assert_eq!(with(0, 4).validate(), Ok(()));
        assert_eq!(
            with(1 << 20, 0).validate(),
            Err(ConfigError::ShardsNotPowerOfTwo(0))
        );
        assert_eq!(
            with(1 << 20, 6).validate(),
            Err(ConfigError::ShardsNotPowerOfTwo(6))
        );
        assert_eq!(
            with(1 << 30, 2048).validate(),
            Err(ConfigError::TooManyShards(2048))
        );
        assert_eq!(
            with(100, 4).validate(),
            Err(ConfigError::ShardTooSmall {
                shard_bytes: 25,
                shards: 4
            })
        );
    }
}
