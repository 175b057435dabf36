//! The state machine on fjall: applies batches of commands atomically and durably, and
//! answers point reads and ordered scans.
//!
//! Layout, one fjall database per node:
//! - `data`: key bytes → [`Record`];
//! - `expiry`: `expires_at_ms (BE) ‖ key` → revision, so due keys are found by a range scan;
//! - `meta`: `revision` → the last revision handed out (u64 BE); `clock` → the state's clock
//!   (u64 BE, Unix ms), see below.
//!
//! # The state's clock
//!
//! A command's time (`at_ms`) decides expiry: a `ttl` counts from it, and a key whose expiry
//! time is not after it is absent to it. The time a command takes effect is
//! `max(at_ms, clock)`, and the clock is then that time: so time never goes backward in the
//! state, whatever clocks stamped the commands (a skewed member, a clock stepped back, a new
//! leader behind the old one), and every replica applying the same log computes the same
//! times. Readers judge expiry by [`StateMachine::clock_ms`] too (in a cluster), so a key
//! expires at the moment the leader's clock put into the log, on every member alike.
//!
//! A batch is committed with `PersistMode::SyncAll` set on the fjall batch, which fsyncs the
//! journal *before* the batch becomes visible to readers: nobody can read a write that a
//! crash could still take back.

use crate::{Command, Op, Outcome, Record, StoreError};
use fjall::CompressionType;
use fjall::compaction::Leveled;
use fjall::config::{CompressionPolicy, PartitioningPolicy};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use hakv_api::Revision;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) const REVISION_KEY: &[u8] = b"revision";
pub(crate) const CLOCK_KEY: &[u8] = b"clock";

/// fjall's memory is bounded by settings, never by data: each keyspace holds one active
/// memtable and at most four sealed ones waiting to be flushed (fjall halts writes beyond
/// that), and the journal forces flushes once it reaches [`MAX_JOURNAL_BYTES`]. So the
/// store's memtables use at most 5 × (16 + 4 + 4) MiB = 120 MiB, usually one or two
/// memtables' worth; see docs/operations.md (Memory) for a whole process's bound.
pub const DATA_MEMTABLE_BYTES: u64 = 16 << 20;
/// Memtable of the small keyspaces (`expiry`, `meta`).
pub const SMALL_MEMTABLE_BYTES: u64 = 4 << 20;
/// Largest journal on disk before fjall flushes memtables to free it (fjall's minimum).
pub const MAX_JOURNAL_BYTES: u64 = 64 << 20;

/// Where and how to open the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// fjall's block cache, in bytes (separate from hakv's value cache).
    pub block_cache_bytes: u64,
    /// How many level-0 tables start a compaction into level 1 in the `data` keyspace, used
    /// only when the keyspace is created (fjall keeps it with the keyspace):
    /// [`DEFAULT_L0_TRIGGER`], or a cluster member's [`staggered_l0_trigger`].
    pub l0_trigger: u8,
}

impl StoreConfig {
    /// A store in `data_dir` with fjall's level-0 trigger.
    pub fn new(data_dir: impl Into<PathBuf>, block_cache_bytes: u64) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            block_cache_bytes,
            l0_trigger: DEFAULT_L0_TRIGGER,
        }
    }
}

/// fjall's default: four level-0 tables (four memtable flushes) start a compaction.
pub const DEFAULT_L0_TRIGGER: u8 = 4;

/// The level-0 compaction trigger of cluster member `node_id`: 4, 5 or 7 tables by the id
/// modulo 3.
///
/// Why members differ: they apply the same writes, so their memtables fill and flush at the
/// same log index, and with one trigger they compact at the same moments too. On a machine
/// that holds several members, their compactions then took every core at once: in a 10-minute
/// soak of 3 members on 2 cores, every 15-17 s all three compacted for 3-4 s and the rate
/// fell to a third (docs/benchmarks.md, "Members that compact at different moments"). With
/// one member per machine, every member's disk would be busy at once, when a commit needs any
/// two of them. The trigger, not the memtable: staggered memtables (16, 13.5, 11 MiB) also
/// desynchronized the members, but a smaller memtable makes more level-0 tables for the same
/// writes, each merged into all of level 1 (keys spread uniformly): the 11 MiB member's
/// storage workers used 0.13 of a core against 0.10; and larger memtables would raise the
/// memory bound. A larger trigger merges more tables at a time, less often (fjall also makes
/// level 1 t × 64 MiB): the members with 5 and 7 used 0.09-0.10 and 0.08 of a core against
/// 0.10 with 4, at the price of up to t level-0 tables' bloom filters checked per read. 4, 5
/// and 7 have no small common multiple, so the members' cycles rarely line up again. Members
/// whose ids are equal modulo 3 (1 and 4) share a trigger; a cluster of 3 with consecutive
/// ids, the usual one, gets all three.
pub fn staggered_l0_trigger(node_id: u64) -> u8 {
    [DEFAULT_L0_TRIGGER, 5, 7][(node_id % 3) as usize]
}

/// Sizes for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct StoreStats {
    pub approximate_keys: u64,
    pub revision: Revision,
}

/// How [`StateMachine::apply_batch_with`] commits.
#[derive(Debug, Clone)]
pub struct ApplyOptions<'a> {
    /// Fsync before the batch becomes visible (true unless a durable log already holds it).
    pub durable: bool,
    /// Extra `meta` keyspace entries committed atomically with the batch.
    pub meta: &'a [(&'a [u8], Vec<u8>)],
}

impl Default for ApplyOptions<'_> {
    fn default() -> Self {
        ApplyOptions {
            durable: true,
            meta: &[],
        }
    }
}

/// A key's state before a batch and as the batch leaves it.
struct KeyState {
    original: Option<Record>,
    current: Option<Record>,
    changed: bool,
}

/// One key changed by an applied batch: its new record, or `None` when it was removed.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: String,
    pub record: Option<Record>,
}

pub struct StateMachine {
    pub(crate) db: Database,
    pub(crate) data: Keyspace,
    pub(crate) expiry: Keyspace,
    pub(crate) meta: Keyspace,
    /// The revision of the last applied batch; readers load it *before* reading so that a
    /// value they read is at least this new (the cache's fill guard depends on that).
    pub(crate) applied: AtomicU64,
    /// The same revision, for readers that wait for a revision to be applied.
    pub(crate) applied_watch: tokio::sync::watch::Sender<u64>,
    /// Set while a snapshot install replaces the state (or was interrupted by a crash):
    /// reads fail with [`StoreError::Installing`] instead of seeing a half-installed state.
    pub(crate) installing: AtomicBool,
    /// The state's clock: the effective time of the last applied command (module docs).
    pub(crate) clock: AtomicU64,
}

impl StateMachine {
    pub fn open(config: &StoreConfig) -> Result<StateMachine, StoreError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StoreError::from_engine(fjall::Error::Io(e)))?;
        let db = Database::builder(&config.data_dir)
            .cache_size(config.block_cache_bytes)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .map_err(StoreError::from_engine)?;
        let sized = |bytes| move || KeyspaceCreateOptions::default().max_memtable_size(bytes);
        // The data keyspace's tables index their blocks in partitions of one block each, found
        // through a small top-level index, and so do their bloom filters. fjall's default keeps
        // one whole index block per table (hundreds of KiB for a 64 MiB table of 1 KB values)
        // and, below level 1, leaves it to the block cache: with a state far larger than the
        // cache, uniform data blocks pushed the index blocks out and nearly every point read
        // (every write reads the key's record first) parsed and copied a whole index block
        // again. A 3-member soak on 1 GB went from 2,829 to 10,618 req/s, its followers from
        // 40 to 24 % of a core at 5 times the writes (docs/benchmarks.md, "Partitioned
        // indexes"). Memory stays bounded by the block cache: partitions are cached like
        // data blocks. Set when the keyspace is created: an existing data directory keeps
        // the layout it was created with (docs/operations.md, Upgrading).
        //
        // Its data blocks are compressed from level 1 down; fjall's default starts at level 2.
        // A snapshot install writes the whole state straight into level 1 (bulk ingestion
        // takes that level's settings), so with the default a member rebuilt from a snapshot
        // held its state uncompressed: 5.1 GB where the leader's took 320 MB after 5M writes
        // of 1 KB values, and its install wrote all of it (docs/benchmarks.md, "Compressed
        // ingestion"). Level 0 stays uncompressed: flushes empty the memtables that writes
        // wait for. Also set at creation, like the partitioning, and so is the level-0
        // compaction trigger (`config.l0_trigger`; see `staggered_l0_trigger`).
        let data = db.keyspace("data", || {
            sized(DATA_MEMTABLE_BYTES)()
                .compaction_strategy(Arc::new(Leveled::default().with_l0_threshold(config.l0_trigger)))
                .index_block_partitioning_policy(PartitioningPolicy::all(true))
                .filter_block_partitioning_policy(PartitioningPolicy::all(true))
                .data_block_compression_policy(CompressionPolicy::new([
                    CompressionType::None,
                    CompressionType::Lz4,
                ]))
        })?;
        let expiry = db.keyspace("expiry", sized(SMALL_MEMTABLE_BYTES))?;
        let meta = db.keyspace("meta", sized(SMALL_MEMTABLE_BYTES))?;
        let revision = meta_u64(&meta, REVISION_KEY, "meta/revision")?;
        let clock = meta_u64(&meta, CLOCK_KEY, "meta/clock")?;
        let interrupted = meta.contains_key(crate::snapshot::INSTALLING_KEY)?;
        if interrupted {
            tracing::warn!("a snapshot install was interrupted: reads are refused until it is repeated");
        }
        Ok(StateMachine {
            db,
            data,
            expiry,
            meta,
            applied: AtomicU64::new(revision),
            applied_watch: tokio::sync::watch::Sender::new(revision),
            clock: AtomicU64::new(clock),
            installing: AtomicBool::new(interrupted),
        })
    }

    /// The revision of the newest applied change.
    /// Waits until revision `at_least` is applied here (read-your-writes on any replica).
    pub async fn wait_for_revision(&self, at_least: Revision) {
        let mut applied = self.applied_watch.subscribe();
        // The sender lives as long as `self`, so this only ends when the revision is reached.
        let _ = applied.wait_for(|revision| *revision >= at_least.0).await;
    }

    pub(crate) fn publish_revision(&self, revision: Revision) {
        self.applied.store(revision.0, Ordering::Release);
        self.applied_watch.send_replace(revision.0);
    }

    pub fn revision(&self) -> Revision {
        Revision(self.applied.load(Ordering::Acquire))
    }

    /// The state's clock in Unix ms: the effective time of the newest applied command. It never
    /// goes backward (module docs, "The state's clock").
    pub fn clock_ms(&self) -> u64 {
        self.clock.load(Ordering::Acquire)
    }

    /// The stored record, expired or not; callers decide liveness with their clock.
    pub fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        self.refuse_while_installing()?;
        self.read_record(key)
    }

    /// [`get`](Self::get) for the apply path, which an install never runs beside.
    fn read_record(&self, key: &str) -> Result<Option<Record>, StoreError> {
        match self.data.get(key.as_bytes())? {
            Some(bytes) => Record::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` live keys starting with `prefix`, in byte order, strictly after `after`.
    pub fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        Ok(self.scan_bounded(prefix, after, limit, usize::MAX, now_ms)?.0)
    }

    /// [`scan`](Self::scan) that also stops once the keys and values read reach `max_bytes`
    /// (after at least one record), so one page's memory is bounded whatever the values'
    /// sizes. The flag is true when it stopped for the bytes (more may follow).
    pub fn scan_bounded(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        max_bytes: usize,
        now_ms: u64,
    ) -> Result<(Vec<(String, Record)>, bool), StoreError> {
        use std::ops::Bound;
        self.refuse_while_installing()?;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.as_bytes().to_vec()),
            _ => Bound::Included(prefix.as_bytes().to_vec()),
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for guard in self.data.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (key, value) = guard.into_inner()?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let key = String::from_utf8(key.to_vec()).map_err(|_| StoreError::Corrupt {
                key: String::from_utf8_lossy(&key).into(),
                reason: "key is not UTF-8",
            })?;
            let record = Record::decode(&key, &value)?;
            if record.is_live_at(now_ms) {
                bytes += key.len() + record.value.as_bytes().len();
                out.push((key, record));
                if out.len() >= limit {
                    break;
                }
                if bytes >= max_bytes {
                    return Ok((out, true));
                }
            }
        }
        Ok((out, false))
    }

    fn refuse_while_installing(&self) -> Result<(), StoreError> {
        if self.installing.load(Ordering::SeqCst) {
            return Err(StoreError::Installing);
        }
        Ok(())
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            approximate_keys: self.data.approximate_len() as u64,
            revision: self.revision(),
        }
    }

    /// Keys whose expiry time is at or before `now_ms`, oldest first, with the revision they
    /// expire at (for `Op::Expire`).
    /// The earliest time a stored key expires, if any key has a TTL.
    pub fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
        crate::expiry::next(&self.expiry)
    }

    pub fn due_for_expiry(&self, now_ms: u64, limit: usize) -> Result<Vec<(String, Revision)>, StoreError> {
        crate::expiry::due(&self.expiry, now_ms, limit)
    }

    /// Applies commands in order as one atomic, fsynced batch. Returns each command's outcome
    /// and the keys it changed. `before_visible` runs before the batch becomes visible, with
    /// the highest revision of the batch (the cache invalidates there).
    pub fn apply_batch(
        &self,
        commands: &[Command],
        before_visible: impl FnOnce(&[Change], Revision),
    ) -> Result<(Vec<Outcome>, Vec<Change>), StoreError> {
        self.apply_batch_with(commands, &ApplyOptions::default(), before_visible)
    }

    /// [`apply_batch`](Self::apply_batch) with options: whether to fsync (a replicated log
    /// that is already durable does not need it) and extra `meta` entries written in the same
    /// atomic batch (such as the last applied log position).
    pub fn apply_batch_with(
        &self,
        commands: &[Command],
        options: &ApplyOptions,
        before_visible: impl FnOnce(&[Change], Revision),
    ) -> Result<(Vec<Outcome>, Vec<Change>), StoreError> {
        let mut revision = self.revision();
        let clock_before = self.clock_ms();
        let mut clock = clock_before;
        // Each key's state before the batch and as the batch leaves it. Only the final state
        // goes into the fjall batch: all items of one fjall batch share a sequence number, so
        // one key must not appear twice in it.
        let mut touched: HashMap<&str, KeyState> = HashMap::new();
        let mut outcomes = Vec::with_capacity(commands.len());
        for command in commands {
            let key = command.op.key();
            let state = match touched.entry(key) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let original = self.read_record(key)?;
                    entry.insert(KeyState {
                        current: original.clone(),
                        original,
                        changed: false,
                    })
                }
            };
            // The command takes effect at its time or the state's clock, whichever is later.
            let at_ms = command.at_ms.max(clock);
            clock = at_ms;
            let live = state.current.as_ref().filter(|r| r.is_live_at(at_ms));
            let (outcome, next) = decide(command, at_ms, live, state.current.as_ref(), revision.next());
            if let Some(next) = next {
                revision = revision.next();
                state.current = next;
                state.changed = true;
            }
            outcomes.push(outcome);
        }
        let mut batch = self
            .db
            .batch()
            .durability(options.durable.then_some(PersistMode::SyncAll));
        let mut changes = Vec::new();
        for (key, state) in touched {
            if !state.changed {
                continue;
            }
            let old_expiry = state.original.as_ref().and_then(|r| r.expires_at_ms);
            let new_expiry = state.current.as_ref().and_then(|r| r.expires_at_ms);
            if let Some(at) = old_expiry.filter(|at| Some(*at) != new_expiry) {
                batch.remove(&self.expiry, crate::expiry::index_key(at, key));
            }
            match &state.current {
                Some(record) => {
                    batch.insert(&self.data, key.as_bytes(), record.encode());
                    if let Some(at) = new_expiry {
                        let index = crate::expiry::index_key(at, key);
                        batch.insert(&self.expiry, index, record.revision.0.to_be_bytes());
                    }
                }
                None => batch.remove(&self.data, key.as_bytes()),
            }
            changes.push(Change {
                key: key.to_owned(),
                record: state.current,
            });
        }
        if changes.is_empty() && options.meta.is_empty() && clock == clock_before {
            return Ok((outcomes, changes));
        }
        batch.insert(&self.meta, REVISION_KEY, revision.0.to_be_bytes());
        batch.insert(&self.meta, CLOCK_KEY, clock.to_be_bytes());
        for (key, value) in options.meta {
            batch.insert(&self.meta, *key, value.as_slice());
        }
        before_visible(&changes, revision);
        batch.commit().map_err(StoreError::from_engine)?;
        self.clock.fetch_max(clock, Ordering::AcqRel);
        self.publish_revision(revision);
        Ok((outcomes, changes))
    }

    /// A value written through [`ApplyOptions::meta`].
    pub fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    /// What the stored keys, their expiry index and meta occupy in sorted tables on disk
    /// (the journal and memtables left out): about what a snapshot of the state would weigh.
    pub fn table_bytes(&self) -> u64 {
        self.data.disk_space() + self.expiry.disk_space() + self.meta.disk_space()
    }

    /// Flushes the journal to disk: everything applied so far survives a crash of the machine.
    pub fn persist(&self) -> Result<(), StoreError> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(StoreError::from_engine)
    }
}

/// A u64 (big-endian) kept under `key` in `meta`, 0 when absent.
fn meta_u64(meta: &Keyspace, key: &[u8], name: &str) -> Result<u64, StoreError> {
    match meta.get(key)? {
        Some(bytes) => Ok(u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| {
            StoreError::Corrupt {
                key: name.into(),
                reason: "not 8 bytes",
            }
        })?)),
        None => Ok(0),
    }
}

/// What one command does to its key: the outcome, and the key's new state when it changes
/// (`Some(None)` removes it). `live` is the key as the command sees it (expired = absent);
/// `stored` is what is on disk, which an `Expire` needs to see past the expiry.
fn decide(
    command: &Command,
    at_ms: u64,
    live: Option<&Record>,
    stored: Option<&Record>,
    revision: Revision,
) -> (Outcome, Option<Option<Record>>) {
    let current = live.map(|r| r.revision);
    match &command.op {
        Op::Put {
            value,
            ttl_ms,
            condition,
            ..
        } => {
            if !condition.holds(current) {
                return (Outcome::ConditionFailed { current }, None);
            }
            let record = Record {
                revision,
                expires_at_ms: ttl_ms.map(|ttl| at_ms.saturating_add(ttl)),
                value: value.clone(),
            };
            (
                Outcome::Written {
                    revision,
                    created: live.is_none(),
                },
                Some(Some(record)),
            )
        }
        Op::Delete { condition, .. } => {
            if !condition.holds(current) {
                return (Outcome::ConditionFailed { current }, None);
            }
            if live.is_none() {
                return (Outcome::NotFound, None);
            }
            (Outcome::Deleted { revision }, Some(None))
        }
        Op::Expire {
            revision: expected, ..
        } => match stored {
            Some(r) if r.revision == *expected && !r.is_live_at(at_ms) => {
                (Outcome::Deleted { revision }, Some(None))
            }
            _ => (Outcome::Unchanged, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Condition;
    use hakv_api::to_canonical_json;
    use std::time::{Duration, Instant};

    /// Writes the same two keys again and flushes the memtable: one more table, which overlaps
    /// every earlier one (so a compaction merges tables rather than moving them down).
    fn write_one_table(state: &StateMachine, value: &str) {
        let put = |key: &str| Command {
            at_ms: 1_000,
            op: Op::Put {
                key: key.into(),
                value: to_canonical_json(&serde_json::json!(value)),
                ttl_ms: None,
                condition: Condition::Always,
            },
        };
        state.apply_batch(&[put("a"), put("z")], |_, _| {}).unwrap();
        state.data.rotate_memtable_and_wait().unwrap();
    }

    /// Empties level 0 (a major compaction), adds three overlapping tables to it and waits
    /// (30 s at most) until a compaction has merged them down to fewer than two: which
    /// happens at a trigger of 2 or 3, never at fjall's 4.
    fn three_level0_tables_are_merged(state: &StateMachine) -> bool {
        state.data.major_compact().unwrap();
        for value in ["1", "2", "3"] {
            write_one_table(state, value);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while state.data.l0_table_count() >= 2 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn the_data_keyspace_compacts_at_its_trigger_fixed_when_it_was_created() {
        let dir = tempfile::tempdir().unwrap();
        let created = StateMachine::open(&StoreConfig {
            l0_trigger: 2,
            ..StoreConfig::new(dir.path(), 1 << 20)
        })
        .unwrap();
        assert!(
            three_level0_tables_are_merged(&created),
            "no compaction with a trigger of 2"
        );
        drop(created);
        // Opened again with the default (4): the keyspace keeps the trigger it was created with.
        let reopened = StateMachine::open(&StoreConfig::new(dir.path(), 1 << 20)).unwrap();
        assert!(
            three_level0_tables_are_merged(&reopened),
            "the trigger of 2 was not kept"
        );
    }

    #[test]
    fn three_consecutive_members_get_three_level0_triggers() {
        let triggers: Vec<u8> = (1..=3).map(staggered_l0_trigger).collect();
        assert_eq!(triggers, [5, 7, DEFAULT_L0_TRIGGER]);
        assert!((0..100).all(|id| (4..=7).contains(&staggered_l0_trigger(id))));
    }
}
