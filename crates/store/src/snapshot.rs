//! Whole-state snapshots, streamed: written from one fjall point-in-time view to any
//! `Write` (a file), and installed from any `Read` by bulk ingestion, so that memory never
//! depends on the state's size. The Raft layer ships these bytes to lagging or new members.
//!
//! # Format, version 2
//!
//! All integers are big-endian.
//!
//! ```text
//! magic    "HAKVSNAP" (8 bytes)
//! version  u8 = 2
//! revision u64            the state machine's revision (also under `revision` in `meta`)
//! section × 3             meta, data, expiry, in this order:
//!   tag    u8             1 = meta, 2 = data, 3 = expiry
//!   entry*                key_len u32 (< 0xFFFF_FFFF), key, value_len u32, value
//!   end    u32 = 0xFFFF_FFFF
//! end      u8 = 0xFF, u64 = the number of entries in all sections,
//!          u32 = CRC-32 of every byte before it
//! ```
//!
//! Entries are the raw keyspace contents (see `state_machine.rs` for their layout), in key
//! order. A reader refuses unknown versions, unknown or misordered tags, truncation, a wrong
//! checksum and trailing bytes. An install first reads the whole stream once to check it, so a
//! damaged snapshot is refused before anything is touched.

use crate::state_machine::{CLOCK_KEY, REVISION_KEY};
use crate::writeback::TableWriteback;
use crate::{StateMachine, StoreError};
use fjall::{Keyspace, PersistMode, Readable};
use hakv_api::Revision;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

const MAGIC: &[u8; 8] = b"HAKVSNAP";
const FORMAT_V2: u8 = 2;
const TAG_META: u8 = 1;
const TAG_DATA: u8 = 2;
const TAG_EXPIRY: u8 = 3;
const TAG_END: u8 = 0xFF;
const SECTION_END: u32 = u32::MAX;
/// `meta` key present while an install is under way: the state is then neither the old nor
/// the new one, and must be installed again before anyone reads it.
pub(crate) const INSTALLING_KEY: &[u8] = b"snapshot/installing";
/// An install removes the old state in batches of about this many bytes (not fsynced; the
/// new state's tables and the last meta batch are), so its memory does not grow with the state.
const INSTALL_BATCH_BYTES: usize = 4 << 20;

type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// A consistent view of the state machine to write a snapshot from. Its `meta` keyspace is
/// read up front (it is small): the Raft layer needs the last applied log position, from the
/// same view as the data, before it writes anything.
pub struct SnapshotView<'a> {
    state: &'a StateMachine,
    view: fjall::Snapshot,
    pub revision: Revision,
    /// The `meta` keyspace at the view's point, including entries written through
    /// [`ApplyOptions::meta`](crate::ApplyOptions) (such as the last applied log position).
    pub meta: Entries,
}

/// A snapshot as exported whole into memory (tests and small tools; Raft streams).
#[derive(Debug, Clone)]
pub struct SnapshotExport {
    pub bytes: Vec<u8>,
    pub revision: Revision,
    pub meta: Entries,
    /// Number of stored keys (live or expired but not yet purged).
    pub keys: u64,
}

/// What [`StateMachine::verify_snapshot`] found in a good snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub revision: Revision,
    pub keys: u64,
    /// The snapshot's own CRC-32 (its last four bytes).
    pub crc32: u32,
}

/// What [`StateMachine::import_snapshot_from`] installed.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotImport {
    pub revision: Revision,
    pub keys: u64,
}

impl StateMachine {
    /// A point-in-time view to write a snapshot from, consistent even while batches keep
    /// being applied.
    pub fn snapshot_view(&self) -> Result<SnapshotView<'_>, StoreError> {
        let view = self.db.snapshot();
        let mut meta = Entries::new();
        for guard in view.iter(&self.meta) {
            let (key, value) = guard.into_inner()?;
            meta.insert(key.to_vec(), value.to_vec());
        }
        meta.remove(INSTALLING_KEY);
        let revision = match meta.get(REVISION_KEY) {
            Some(bytes) => Revision(be_u64(bytes).ok_or_else(|| corrupt("meta revision is not 8 bytes"))?),
            None => Revision::ZERO,
        };
        Ok(SnapshotView {
            state: self,
            view,
            revision,
            meta,
        })
    }

    /// The whole snapshot in memory.
    pub fn export_snapshot(&self) -> Result<SnapshotExport, StoreError> {
        let view = self.snapshot_view()?;
        let mut bytes = Vec::new();
        let keys = view.write_to(&mut bytes)?;
        Ok(SnapshotExport {
            bytes,
            revision: view.revision,
            meta: view.meta,
            keys,
        })
    }

    /// [`import_snapshot_from`](Self::import_snapshot_from) for a snapshot in memory.
    pub fn import_snapshot(
        &self,
        bytes: &[u8],
        extra_meta: &[(&[u8], Vec<u8>)],
        before_visible: impl FnOnce(Revision),
    ) -> Result<SnapshotImport, StoreError> {
        self.import_snapshot_from(|| Ok(bytes), extra_meta, before_visible)
    }

    /// Replaces the whole state with a snapshot read from `open()`, which is called twice:
    /// once to check the stream whole (nothing is touched when it is damaged), once to
    /// install it. `extra_meta` entries are written over the snapshot's own meta (the Raft
    /// layer records the snapshot's log position there); `before_visible` runs with the new
    /// revision before the install starts (the cache is reset there).
    ///
    /// While the install runs, reads fail with [`StoreError::Installing`]; if the process
    /// dies meanwhile, the store reopens still refusing reads
    /// ([`is_installing`](Self::is_installing)) until the install is repeated.
    /// The last batch is fsynced: after an install the Raft log no longer holds the entries
    /// the snapshot covers, so the state machine is then their only durable copy.
    pub fn import_snapshot_from<R: Read>(
        &self,
        open: impl Fn() -> io::Result<R>,
        extra_meta: &[(&[u8], Vec<u8>)],
        before_visible: impl FnOnce(Revision),
    ) -> Result<SnapshotImport, StoreError> {
        read_snapshot(open().map_err(io_error)?, |_, _, _| Ok(()))?;
        self.import_verified_snapshot_from(open, extra_meta, before_visible)
    }

    /// [`import_snapshot_from`](Self::import_snapshot_from) for a stream already checked whole
    /// ([`verify_snapshot`](Self::verify_snapshot), as a member does while it receives one):
    /// it is read once, not twice. A stream that fails its checks after all still fails the
    /// import, at its end, with the old state already removed: the install mark stays and
    /// reads are refused until another install succeeds.
    pub fn import_verified_snapshot_from<R: Read>(
        &self,
        open: impl Fn() -> io::Result<R>,
        extra_meta: &[(&[u8], Vec<u8>)],
        before_visible: impl FnOnce(Revision),
    ) -> Result<SnapshotImport, StoreError> {
        let mut head = open().map_err(io_error)?;
        let revision = read_revision(&mut head)?;
        drop(head);
        self.installing.store(true, Ordering::SeqCst);
        before_visible(revision);
        let mut marker = self.db.batch().durability(Some(PersistMode::SyncAll));
        marker.insert(&self.meta, INSTALLING_KEY, b"1");
        marker.commit().map_err(StoreError::from_engine)?;
        self.remove_everything_but_the_marker()?;

        let mut meta = Entries::new();
        // Data and expiry are written straight into new sorted tables (fjall's bulk
        // ingestion: no journal, no memtable, no compaction of flushed runs), which makes an
        // install several times faster than batched writes. Each ingestion is registered with
        // a sequence number above the removals just written.
        let mut data_run = self.data.start_ingestion().map_err(StoreError::from_engine)?;
        let mut expiry_run = self.expiry.start_ingestion().map_err(StoreError::from_engine)?;
        // The engine fsyncs each new table whole (64 MiB); written back as they grow, those
        // fsyncs find little left, and the Raft log's fsyncs do not wait behind them.
        let mut writeback = TableWriteback::new(self.data.path());
        let installed = read_snapshot(open().map_err(io_error)?, |tag, key, value| {
            match tag {
                TAG_META => {
                    meta.insert(key.to_vec(), value.to_vec());
                    return Ok(());
                }
                TAG_DATA => {
                    writeback.wrote((key.len() + value.len()) as u64);
                    data_run.write(key, value)
                }
                _ => expiry_run.write(key, value),
            }
            .map_err(StoreError::from_engine)
        })?;
        data_run.finish().map_err(StoreError::from_engine)?;
        expiry_run.finish().map_err(StoreError::from_engine)?;
        meta.insert(REVISION_KEY.to_vec(), installed.revision.0.to_be_bytes().to_vec());
        for (key, value) in extra_meta {
            meta.insert(key.to_vec(), value.clone());
        }
        let mut last = self.db.batch().durability(Some(PersistMode::SyncAll));
        for (key, value) in &meta {
            last.insert(&self.meta, key.as_slice(), value.as_slice());
        }
        last.remove(&self.meta, INSTALLING_KEY);
        last.commit().map_err(StoreError::from_engine)?;
        let clock = meta.get(CLOCK_KEY).and_then(|bytes| be_u64(bytes)).unwrap_or(0);
        self.clock.store(clock, Ordering::Release);
        self.publish_revision(installed.revision);
        self.installing.store(false, Ordering::SeqCst);
        Ok(SnapshotImport {
            revision: installed.revision,
            keys: installed.data_entries,
        })
    }

    /// Reads a whole snapshot stream and checks it (structure, counts, CRC-32) without
    /// installing anything: what a backup tool does before it calls a file good.
    pub fn verify_snapshot(input: impl Read) -> Result<SnapshotSummary, StoreError> {
        let summary = read_snapshot(input, |_, _, _| Ok(()))?;
        Ok(SnapshotSummary {
            revision: summary.revision,
            keys: summary.data_entries,
            crc32: summary.crc32,
        })
    }

    /// Removes every `meta` entry whose key starts with `prefix`, durably (a restored backup
    /// drops the position in the Raft log of the cluster it was taken from).
    pub fn remove_meta_prefix(&self, prefix: &[u8]) -> Result<(), StoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        for guard in self.meta.prefix(prefix) {
            batch.remove(&self.meta, guard.key()?);
        }
        batch.commit().map_err(StoreError::from_engine)
    }

    /// True if `head` (at least the first 9 bytes of a snapshot stream) is in the format this
    /// build writes; older formats cannot be installed and must be rebuilt.
    pub fn is_current_snapshot_format(head: &[u8]) -> bool {
        head.len() > MAGIC.len() && &head[..MAGIC.len()] == MAGIC && head[MAGIC.len()] == FORMAT_V2
    }

    /// True while an install runs, and when the store was opened in the middle of one (see
    /// [`import_snapshot_from`](Self::import_snapshot_from)): reads are refused.
    pub fn is_installing(&self) -> bool {
        self.installing.load(Ordering::SeqCst)
    }

    /// Removes every key of every keyspace, in bounded batches, except the install marker.
    fn remove_everything_but_the_marker(&self) -> Result<(), StoreError> {
        let view = self.db.snapshot();
        let mut batch = Batcher::new(self);
        for (keyspace, is_meta) in [(&self.data, false), (&self.expiry, false), (&self.meta, true)] {
            for guard in view.iter(keyspace) {
                let key = guard.key()?;
                if is_meta && key.as_ref() == INSTALLING_KEY {
                    continue;
                }
                batch.remove(keyspace, &key)?;
            }
        }
        batch.flush()
    }
}

impl SnapshotView<'_> {
    /// Writes the snapshot to `out`; returns the number of data keys written.
    pub fn write_to(&self, out: &mut impl Write) -> Result<u64, StoreError> {
        let mut out = Checksummed::new(out);
        out.put(MAGIC)?;
        out.put(&[FORMAT_V2])?;
        out.put(&self.revision.0.to_be_bytes())?;
        let mut total = 0u64;
        let mut data_keys = 0;
        out.put(&[TAG_META])?;
        for (key, value) in &self.meta {
            put_entry(&mut out, key, value)?;
            total += 1;
        }
        out.put(&SECTION_END.to_be_bytes())?;
        for (tag, keyspace) in [(TAG_DATA, &self.state.data), (TAG_EXPIRY, &self.state.expiry)] {
            out.put(&[tag])?;
            for guard in self.view.iter(keyspace) {
                let (key, value) = guard.into_inner()?;
                put_entry(&mut out, &key, &value)?;
                total += 1;
                if tag == TAG_DATA {
                    data_keys += 1;
                }
            }
            out.put(&SECTION_END.to_be_bytes())?;
        }
        out.put(&[TAG_END])?;
        out.put(&total.to_be_bytes())?;
        let crc = out.crc.clone().finalize();
        out.inner.write_all(&crc.to_be_bytes()).map_err(io_error)?;
        Ok(data_keys)
    }
}

/// Commits removals in batches of about [`INSTALL_BATCH_BYTES`], not fsynced.
struct Batcher<'a> {
    state: &'a StateMachine,
    batch: fjall::OwnedWriteBatch,
    bytes: usize,
}

impl<'a> Batcher<'a> {
    fn new(state: &'a StateMachine) -> Self {
        Batcher {
            state,
            batch: state.db.batch(),
            bytes: 0,
        }
    }

    fn remove(&mut self, keyspace: &Keyspace, key: &[u8]) -> Result<(), StoreError> {
        self.batch.remove(keyspace, key);
        self.grew(key.len())
    }

    fn grew(&mut self, by: usize) -> Result<(), StoreError> {
        self.bytes += by;
        if self.bytes >= INSTALL_BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let full = std::mem::replace(&mut self.batch, self.state.db.batch());
        self.bytes = 0;
        full.commit().map_err(StoreError::from_engine)
    }
}

/// A writer that keeps a running CRC-32 of what went through it.
struct Checksummed<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Checksummed<W> {
    fn new(inner: W) -> Self {
        Checksummed {
            inner,
            crc: crc32fast::Hasher::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.crc.update(bytes);
        self.inner.write_all(bytes).map_err(io_error)
    }
}

fn put_entry<W: Write>(out: &mut Checksummed<W>, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
    for chunk in [key, value] {
        let len = u32::try_from(chunk.len())
            .ok()
            .filter(|len| *len != SECTION_END)
            .ok_or_else(|| corrupt("entry of 4 GiB or more"))?;
        out.put(&len.to_be_bytes())?;
        out.put(chunk)?;
    }
    Ok(())
}

fn io_error(err: io::Error) -> StoreError {
    StoreError::from_engine(fjall::Error::Io(err))
}

fn corrupt(reason: &'static str) -> StoreError {
    StoreError::Corrupt {
        key: "snapshot".into(),
        reason,
    }
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// What a complete read of a snapshot found.
struct ReadSummary {
    revision: Revision,
    data_entries: u64,
    crc32: u32,
}

/// A reader of snapshot bytes that keeps a running CRC-32 and reports truncation as
/// corruption.
struct Reader<R> {
    inner: R,
    crc: crc32fast::Hasher,
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    fn fill(&mut self, n: usize, checksummed: bool) -> Result<&[u8], StoreError> {
        self.buf.resize(n, 0);
        self.inner.read_exact(&mut self.buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("snapshot is truncated"),
            _ => io_error(e),
        })?;
        if checksummed {
            self.crc.update(&self.buf);
        }
        Ok(&self.buf)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.fill(1, true)?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(
            self.fill(4, true)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(be_u64(self.fill(8, true)?).expect("8 bytes"))
    }
}

/// The revision in a snapshot stream's header, read without the rest of it (the whole stream,
/// CRC included, is checked by `read_snapshot`).
fn read_revision(input: &mut impl Read) -> Result<Revision, StoreError> {
    let mut head = [0u8; MAGIC.len() + 9];
    input
        .read_exact(&mut head)
        .map_err(|_| corrupt("shorter than its header"))?;
    let (magic, rest) = head.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(corrupt("not a hakv snapshot"));
    }
    if rest[0] != FORMAT_V2 {
        return Err(corrupt("unknown snapshot format version"));
    }
    Ok(Revision(
        be_u64(&rest[1..9]).ok_or_else(|| corrupt("snapshot revision is not 8 bytes"))?,
    ))
}

/// Reads a whole snapshot, handing each entry to `entry(tag, key, value)`; fails on any
/// damage (after some entries may have been handed over: check with a first read).
fn read_snapshot(
    input: impl Read,
    mut entry: impl FnMut(u8, &[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<ReadSummary, StoreError> {
    let mut reader = Reader {
        inner: input,
        crc: crc32fast::Hasher::new(),
        buf: Vec::new(),
    };
    if reader.fill(MAGIC.len(), true)? != MAGIC {
        return Err(corrupt("not a hakv snapshot"));
    }
    if reader.u8()? != FORMAT_V2 {
        return Err(corrupt("unknown snapshot format version"));
    }
    let revision = Revision(reader.u64()?);
    let mut total = 0u64;
    let mut data_entries = 0u64;
    let mut key = Vec::new();
    for tag in [TAG_META, TAG_DATA, TAG_EXPIRY] {
        if reader.u8()? != tag {
            return Err(corrupt("snapshot sections out of order"));
        }
        let mut first = true;
        loop {
            let key_len = reader.u32()?;
            if key_len == SECTION_END {
                break;
            }
            let next = reader.fill(key_len as usize, true)?;
            // An install ingests each section as a sorted run: keys must strictly ascend.
            if !first && next <= key.as_slice() {
                return Err(corrupt("snapshot keys out of order"));
            }
            first = false;
            key.clear();
            key.extend_from_slice(next);
            let value_len = reader.u32()?;
            let value = reader.fill(value_len as usize, true)?;
            entry(tag, &key, value)?;
            total += 1;
            if tag == TAG_DATA {
                data_entries += 1;
            }
        }
    }
    if reader.u8()? != TAG_END || reader.u64()? != total {
        return Err(corrupt("snapshot trailer does not match its sections"));
    }
    let expected = reader.crc.clone().finalize();
    let stored = u32::from_be_bytes(reader.fill(4, false)?.try_into().expect("4 bytes"));
    if stored != expected {
        return Err(corrupt("snapshot checksum mismatch"));
    }
    let mut rest = [0u8; 1];
    match reader.inner.read(&mut rest) {
        Ok(0) => {}
        Ok(_) => return Err(corrupt("trailing bytes after the snapshot")),
        Err(e) => return Err(io_error(e)),
    }
    Ok(ReadSummary {
        revision,
        data_entries,
        crc32: stored,
    })
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
