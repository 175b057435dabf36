//! Removing a large file without stalling every other writer on its filesystem.
//!
//! Unlinking a file frees all its blocks in one journal transaction, and every fsync on the
//! filesystem waits for that transaction: removing a 1 GiB file on this machine's ext4 made
//! another process's 1 KiB `fdatasync`s take up to 58 ms (1.3 ms otherwise), and a member that
//! removed the gigabyte snapshot it had just installed stalled the writes of the members
//! sharing its disk for as long (docs/benchmarks.md, "Removing the installed file gradually").
//! Truncated from its end in steps of [`STEP_BYTES`] first, each step frees a bounded part:
//! the other writer's worst `fdatasync` was 4.2 ms with 8 MiB steps (9.7 ms with 32 MiB), and
//! the removal took 0.7 s instead of 0.26 s. RocksDB's `DeleteScheduler` does the same.

use std::fs::OpenOptions;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes freed per truncation step.
pub const STEP_BYTES: u64 = 8 << 20;
/// Pause between steps, so that other writers' transactions commit in between.
const PAUSE: Duration = Duration::from_millis(2);

/// Removes the file at `path` by truncating it in steps, then unlinking it. A missing file is
/// not an error.
pub fn remove_gradually(path: &Path) -> io::Result<()> {
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut size = file.metadata()?.len();
    while size > STEP_BYTES {
        size -= STEP_BYTES;
        file.set_len(size)?;
        std::thread::sleep(PAUSE);
    }
    drop(file);
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// [`remove_gradually`] on a thread of its own, for a caller that must not wait; a failure is
/// logged (the file is a leftover that the next start removes).
pub fn remove_gradually_in_background(path: PathBuf) {
    let spawned = std::thread::Builder::new().name("hakv-remove".into()).spawn({
        let path = path.clone();
        move || {
            if let Err(e) = remove_gradually(&path) {
                tracing::warn!(error = %e, path = %path.display(), "removing a file");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, path = %path.display(), "no thread to remove a file; removing it at once");
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_is_removed_and_a_missing_one_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(3 * STEP_BYTES + 5).unwrap();
        drop(file);
        remove_gradually(&path).unwrap();
        assert!(!path.exists());
        remove_gradually(&path).unwrap();
    }

    #[test]
    fn removal_in_the_background_ends_with_the_file_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large");
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
        remove_gradually_in_background(path.clone());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while path.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!path.exists());
    }
}
