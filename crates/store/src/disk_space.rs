//! Free space on the data directory's filesystem, watched, so that writes are refused (HTTP 507)
//! while it is below a reserve instead of running the storage engine into a full disk.
//!
//! Why a reserve rather than handling `ENOSPC`: fjall poisons itself when a journal write
//! fails, and its flush and compaction workers stop, so a store that met a full disk takes no
//! write until the process restarts. Refusing client writes while there is still room keeps
//! the engine's own work (memtable flushes, compactions, the Raft log's heartbeats and
//! snapshots) on the right side of the edge, and writes resume by themselves as soon as space
//! is freed. TiKV does the same (`storage.reserve-space`); etcd refuses writes past a quota.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the free space is sampled. A write-heavy node fills a few MiB in this time,
/// which the reserve absorbs.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The reserve when none is configured: a tenth of the filesystem, at most this much.
const DEFAULT_RESERVE_CAP: u64 = 1 << 30;

/// The watched filesystem of one data directory. Cheap to query from any thread.
#[derive(Debug)]
pub struct DiskSpace {
    path: PathBuf,
    reserve: u64,
    free: AtomicU64,
    total: AtomicU64,
    low: AtomicBool,
}

impl DiskSpace {
    /// Samples `path`'s filesystem now, then every 100 ms on a thread of its own until the
    /// returned handle is dropped. `reserve`: refuse writes while fewer bytes than this are
    /// free (`None`: a tenth of the filesystem, at most 1 GiB).
    pub fn watch(path: &Path, reserve: Option<u64>) -> std::io::Result<Arc<DiskSpace>> {
        let space = Arc::new(DiskSpace::sampled_once(path, reserve)?);
        let weak = Arc::downgrade(&space);
        std::thread::Builder::new()
            .name("hakv-disk-space".into())
            .spawn(move || sample_until_dropped(weak))?;
        Ok(space)
    }

    fn sampled_once(path: &Path, reserve: Option<u64>) -> std::io::Result<DiskSpace> {
        let (free, total) = free_and_total(path)?;
        let space = DiskSpace {
            path: path.to_path_buf(),
            reserve: reserve.unwrap_or((total / 10).min(DEFAULT_RESERVE_CAP)),
            free: AtomicU64::new(free),
            total: AtomicU64::new(total),
            low: AtomicBool::new(false),
        };
        space.record(free, total);
        Ok(space)
    }

    /// True while writes must be refused: free space fell below the reserve and has not yet
    /// risen back above it by an eighth of the reserve (so the answer does not flap).
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    pub fn free_bytes(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn reserve_bytes(&self) -> u64 {
        self.reserve
    }

    /// Samples now (tests, and callers that just freed space).
    pub fn refresh(&self) {
        if let Ok((free, total)) = free_and_total(&self.path) {
            self.record(free, total);
        }
    }

    fn record(&self, free: u64, total: u64) {
        self.free.store(free, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        let was_low = self.is_low();
        let low = if was_low {
            free < self.reserve + self.reserve / 8
        } else {
            free < self.reserve
        };
        if low != was_low {
            self.low.store(low, Ordering::Relaxed);
            if low {
                tracing::warn!(free, reserve = self.reserve, path = %self.path.display(),
                    "disk nearly full: refusing writes until space is freed");
            } else {
                tracing::info!(
                    free,
                    reserve = self.reserve,
                    "disk space freed: taking writes again"
                );
            }
        }
    }
}

fn sample_until_dropped(space: Weak<DiskSpace>) {
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        let Some(space) = space.upgrade() else {
            return;
        };
        space.refresh();
    }
}

/// Bytes available to this (unprivileged) process, and the filesystem's size.
fn free_and_total(path: &Path) -> std::io::Result<(u64, u64)> {
    let stat = rustix::fs::statvfs(path)?;
    Ok((
        stat.f_bavail.saturating_mul(stat.f_frsize),
        stat.f_blocks.saturating_mul(stat.f_frsize),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_below_the_reserve_and_resume_above_it_with_a_margin() {
        let dir = tempfile::tempdir().unwrap();
        let space = DiskSpace::sampled_once(dir.path(), Some(800)).unwrap();
        space.record(799, 10_000);
        assert!(space.is_low());
        space.record(850, 10_000);
        assert!(space.is_low(), "within an eighth of the reserve: still refusing");
        space.record(900, 10_000);
        assert!(!space.is_low());
        space.record(820, 10_000);
        assert!(!space.is_low(), "above the reserve: still taking writes");
    }

    #[test]
    fn the_default_reserve_is_a_tenth_of_the_filesystem_at_most_a_gib() {
        let dir = tempfile::tempdir().unwrap();
        let space = DiskSpace::watch(dir.path(), None).unwrap();
        assert_eq!(
            space.reserve_bytes(),
            (space.total_bytes() / 10).min(DEFAULT_RESERVE_CAP)
        );
        assert!(space.free_bytes() <= space.total_bytes());
        assert!(DiskSpace::watch(&dir.path().join("missing"), None).is_err());
    }
}
