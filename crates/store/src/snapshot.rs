//! Whole-state snapshots: the state machine exported as one versioned byte string at a
//! consistent point, and imported to replace a state machine's contents atomically. The Raft
//! layer ships these bytes to lagging or new nodes.
//!
//! # Format, version 1
//!
//! All integers are big-endian.
//!
//! ```text
//! magic    "HAKVSNAP" (8 bytes)
//! version  u8 = 1
//! revision u64            the state machine's revision (also under `revision` in `meta`)
//! section × 3             meta, data, expiry, in this order:
//!   tag    u8             1 = meta, 2 = data, 3 = expiry
//!   count  u64
//!   count × entry:        key_len u32, key, value_len u32, value (raw keyspace bytes)
//! end      u8 = 0xFF, then u64 = the number of entries in all sections
//! ```
//!
//! Entries are the raw keyspace contents (see `state_machine.rs` for their layout), in key
//! order. A reader refuses unknown versions, unknown or misordered tags, truncation and
//! trailing bytes, so a damaged snapshot is never half-installed.

use crate::state_machine::REVISION_KEY;
use crate::{StateMachine, StoreError};
use fjall::{Keyspace, PersistMode, Readable};
use hakv_api::Revision;
use std::collections::BTreeMap;

const MAGIC: &[u8; 8] = b"HAKVSNAP";
const FORMAT_V1: u8 = 1;
const TAG_META: u8 = 1;
const TAG_DATA: u8 = 2;
const TAG_EXPIRY: u8 = 3;
const TAG_END: u8 = 0xFF;

type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// A snapshot as exported: its bytes, and what a caller needs to know about it without
/// decoding them again.
#[derive(Debug, Clone)]
pub struct SnapshotExport {
    pub bytes: Vec<u8>,
    pub revision: Revision,
    /// The `meta` keyspace at the snapshot's point, including entries written through
    /// [`ApplyOptions::meta`](crate::ApplyOptions) (such as the last applied log position), so
    /// they are consistent with the data.
    pub meta: Entries,
    /// Number of stored keys (live or expired but not yet purged).
    pub keys: u64,
}

/// What [`StateMachine::import_snapshot`] installed.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotImport {
    pub revision: Revision,
    pub keys: u64,
}

impl StateMachine {
    /// Exports meta, data and the expiry index as seen by one fjall snapshot, so the parts are
    /// consistent with each other even while batches keep being applied.
    pub fn export_snapshot(&self) -> Result<SnapshotExport, StoreError> {
        let view = self.db.snapshot();
        let meta = read_all(&view, &self.meta)?;
        let revision = match meta.get(REVISION_KEY) {
            Some(bytes) => Revision(be_u64(bytes).ok_or_else(|| corrupt("meta revision is not 8 bytes"))?),
            None => Revision::ZERO,
        };
        let data = read_all(&view, &self.data)?;
        let expiry = read_all(&view, &self.expiry)?;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.push(FORMAT_V1);
        bytes.extend_from_slice(&revision.0.to_be_bytes());
        let mut total = 0u64;
        for (tag, entries) in [(TAG_META, &meta), (TAG_DATA, &data), (TAG_EXPIRY, &expiry)] {
            bytes.push(tag);
            bytes.extend_from_slice(&(entries.len() as u64).to_be_bytes());
            for (key, value) in entries {
                put_chunk(&mut bytes, key)?;
                put_chunk(&mut bytes, value)?;
            }
            total += entries.len() as u64;
        }
        bytes.push(TAG_END);
        bytes.extend_from_slice(&total.to_be_bytes());
        Ok(SnapshotExport {
            bytes,
            revision,
            keys: data.len() as u64,
            meta,
        })
    }

    /// Replaces the whole state with the snapshot's in one atomic, fsynced batch: readers see
    /// either the old state or the new one. `extra_meta` entries are written over the
    /// snapshot's own meta (the Raft layer records the snapshot's log position there).
    /// `before_visible` runs with the new revision just before the new state becomes visible
    /// (the cache is reset there).
    ///
    /// The batch is fsynced because after an install the Raft log no longer holds the entries
    /// the snapshot covers: the state machine is then their only durable copy.
    pub fn import_snapshot(
        &self,
        bytes: &[u8],
        extra_meta: &[(&[u8], Vec<u8>)],
        before_visible: impl FnOnce(Revision),
    ) -> Result<SnapshotImport, StoreError> {
        let decoded = decode(bytes)?;
        let mut meta = decoded.meta;
        meta.insert(REVISION_KEY.to_vec(), decoded.revision.0.to_be_bytes().to_vec());
        for (key, value) in extra_meta {
            meta.insert(key.to_vec(), value.clone());
        }
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        // A key may appear only once per fjall batch, so keys that the snapshot also holds are
        // overwritten rather than removed and re-inserted.
        for (keyspace, wanted) in [
            (&self.meta, &meta),
            (&self.data, &decoded.data),
            (&self.expiry, &decoded.expiry),
        ] {
            for guard in keyspace.iter() {
                let key = guard.key()?;
                if !wanted.contains_key(key.as_ref()) {
                    batch.remove(keyspace, key);
                }
            }
            for (key, value) in wanted {
                batch.insert(keyspace, key.as_slice(), value.as_slice());
            }
        }
        before_visible(decoded.revision);
        batch.commit().map_err(StoreError::from_engine)?;
        self.publish_revision(decoded.revision);
        Ok(SnapshotImport {
            revision: decoded.revision,
            keys: decoded.data.len() as u64,
        })
    }
}

fn read_all(view: &fjall::Snapshot, keyspace: &Keyspace) -> Result<Entries, StoreError> {
    let mut out = Entries::new();
    for guard in view.iter(keyspace) {
        let (key, value) = guard.into_inner()?;
        out.insert(key.to_vec(), value.to_vec());
    }
    Ok(out)
}

fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) -> Result<(), StoreError> {
    let len = u32::try_from(chunk.len()).map_err(|_| corrupt("entry longer than 4 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(chunk);
    Ok(())
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

struct Decoded {
    revision: Revision,
    meta: Entries,
    data: Entries,
    expiry: Entries,
}

/// A cursor over snapshot bytes that reports truncation instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("snapshot is truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(be_u64(self.take(8)?).expect("8 bytes"))
    }

    fn chunk(&mut self) -> Result<&'a [u8], StoreError> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
        self.take(len as usize)
    }
}

fn decode(bytes: &[u8]) -> Result<Decoded, StoreError> {
    let mut reader = Reader(bytes);
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a hakv snapshot"));
    }
    if reader.u8()? != FORMAT_V1 {
        return Err(corrupt("unknown snapshot format version"));
    }
    let revision = Revision(reader.u64()?);
    let mut sections = Vec::with_capacity(3);
    let mut total = 0u64;
    for tag in [TAG_META, TAG_DATA, TAG_EXPIRY] {
        if reader.u8()? != tag {
            return Err(corrupt("snapshot sections out of order"));
        }
        let count = reader.u64()?;
        let mut entries = Entries::new();
        for _ in 0..count {
            let key = reader.chunk()?.to_vec();
            let value = reader.chunk()?.to_vec();
            entries.insert(key, value);
        }
        total += count;
        sections.push(entries);
    }
    if reader.u8()? != TAG_END || reader.u64()? != total {
        return Err(corrupt("snapshot trailer does not match its sections"));
    }
    if !reader.0.is_empty() {
        return Err(corrupt("trailing bytes after the snapshot"));
    }
    let expiry = sections.pop().expect("three sections");
    let data = sections.pop().expect("three sections");
    let meta = sections.pop().expect("three sections");
    Ok(Decoded {
        revision,
        meta,
        data,
        expiry,
    })
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
