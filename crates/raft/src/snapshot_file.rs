//! The node's current snapshot as one file, `<snapshot_dir>/current`, kept so that it can be
//! sent to followers and survives restarts.
//!
//! File format: `meta_len: u32 BE ‖ SnapshotMeta as JSON ‖ snapshot bytes` (the store's
//! versioned snapshot format). It is replaced by writing a temporary file, fsyncing it, and
//! renaming it over the old one, so a crash leaves either the old or the new snapshot.

use crate::NodeId;
use crate::error::RaftStoreError;
use openraft::{BasicNode, SnapshotMeta};
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

type Meta = SnapshotMeta<NodeId, BasicNode>;

#[derive(Clone)]
pub(crate) struct SnapshotFile {
    dir: PathBuf,
    /// Serializes replacements: a builder that read an older state must not overwrite a
    /// snapshot installed meanwhile.
    lock: Arc<Mutex<()>>,
}

impl SnapshotFile {
    pub(crate) fn open(dir: PathBuf) -> Result<SnapshotFile, RaftStoreError> {
        fs::create_dir_all(&dir)?;
        Ok(SnapshotFile {
            dir,
            lock: Arc::new(Mutex::new(())),
        })
    }

    fn current(&self) -> PathBuf {
        self.dir.join("current")
    }

    /// Makes `meta` and `bytes` the current snapshot, unless the current one is newer.
    pub(crate) fn save(&self, meta: &Meta, bytes: &[u8]) -> Result<(), RaftStoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((existing, _)) = self.load_unlocked(false)?
            && existing.last_log_id > meta.last_log_id
        {
            return Ok(());
        }
        let meta_json = serde_json::to_vec(meta).map_err(|e| RaftStoreError::corrupt("snapshot meta", e))?;
        let meta_len = u32::try_from(meta_json.len())
            .map_err(|_| RaftStoreError::corrupt("snapshot meta", "too long"))?;
        let tmp = self.dir.join("current.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&meta_len.to_be_bytes())?;
        file.write_all(&meta_json)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, self.current())?;
        // The rename itself is durable only once the directory is synced.
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// The current snapshot's meta and bytes, if one was ever saved.
    pub(crate) fn load(&self) -> Result<Option<(Meta, Vec<u8>)>, RaftStoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.load_unlocked(true)
    }

    fn load_unlocked(&self, with_data: bool) -> Result<Option<(Meta, Vec<u8>)>, RaftStoreError> {
        let contents = match fs::read(self.current()) {
            Ok(contents) => contents,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let corrupt = |reason| RaftStoreError::corrupt("snapshot file", reason);
        let header: [u8; 4] = contents
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| corrupt("shorter than its header"))?;
        let meta_end = 4 + u32::from_be_bytes(header) as usize;
        let meta_json = contents
            .get(4..meta_end)
            .ok_or_else(|| corrupt("truncated meta"))?;
        let meta: Meta =
            serde_json::from_slice(meta_json).map_err(|e| RaftStoreError::corrupt("snapshot file", e))?;
        let data = if with_data {
            contents[meta_end..].to_vec()
        } else {
            Vec::new()
        };
        Ok(Some((meta, data)))
    }
}
