//! Writing a file's dirty pages back to disk early, in small steps and without a cache flush,
//! so that a large write does not pile up for one final fsync that every other writer on the
//! disk then waits behind.
//!
//! `sync_file_range` rather than `fdatasync`: it writes the dirty pages and waits for them, but
//! does not flush the device's cache, a barrier that every other writer's fsync (the Raft log's,
//! of this member and of any member sharing the disk) waits behind (`bench/writeback-probe.py`:
//! another writer's fsync p99 13.7 ms with `fdatasync` every 32 MiB, 1.4 ms with this after
//! every MiB). It only spreads the work: durability still comes from the fsync at the end.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Writes every dirty page of `file` to the disk and waits for them, without a cache flush.
/// Best effort: a failure is logged and changes nothing (the final fsync reports real errors).
pub fn write_back(file: &File) {
    let flags =
        libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: the descriptor is open for as long as `file` lives; the call reads no memory.
    // Offset 0 and length 0: the whole file.
    let done = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
    if done != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "write-back step failed");
    }
}

/// Bytes ingested between two steps of [`TableWriteback`].
pub(crate) const STEP_BYTES: u64 = 1 << 20;

/// Write-back of the tables a bulk ingestion is writing, which the storage engine opens and
/// fsyncs itself (each whole, every 64 MiB): after every [`STEP_BYTES`] ingested, the newest
/// two files of the keyspace's table folder (the one being written, and one a compaction may
/// be writing meanwhile) are written back.
pub(crate) struct TableWriteback {
    folder: PathBuf,
    unsynced: u64,
}

impl TableWriteback {
    /// For the tables of the keyspace at `keyspace_path` (fjall keeps them in `tables/`).
    pub(crate) fn new(keyspace_path: &Path) -> TableWriteback {
        TableWriteback {
            folder: keyspace_path.join("tables"),
            unsynced: 0,
        }
    }

    pub(crate) fn wrote(&mut self, bytes: u64) {
        self.unsynced += bytes;
        if self.unsynced < STEP_BYTES {
            return;
        }
        self.unsynced = 0;
        for path in newest_files(&self.folder, 2) {
            if let Ok(file) = File::open(path) {
                write_back(&file);
            }
        }
    }
}

/// The `n` files of `folder` with the highest numeric names (table ids only grow).
fn newest_files(folder: &Path, n: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut ids: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path())))
        .collect();
    ids.sort_unstable_by_key(|(id, _)| std::cmp::Reverse(*id));
    ids.into_iter().take(n).map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_tables_are_those_with_the_highest_ids() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["7", "12", "9", "lock", "100"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let newest = newest_files(dir.path(), 2);
        assert_eq!(newest, vec![dir.path().join("100"), dir.path().join("12")]);
        assert!(newest_files(&dir.path().join("missing"), 2).is_empty());
    }

    #[test]
    fn a_step_comes_after_every_step_of_bytes_ingested() {
        let dir = tempfile::tempdir().unwrap();
        let mut tables = TableWriteback::new(dir.path());
        tables.wrote(STEP_BYTES - 1);
        assert_eq!(tables.unsynced, STEP_BYTES - 1, "no step yet");
        tables.wrote(1);
        assert_eq!(
            tables.unsynced, 0,
            "a step (no table folder: nothing to write back)"
        );
        tables.wrote(STEP_BYTES / 2);
        assert_eq!(tables.unsynced, STEP_BYTES / 2);
    }
}
