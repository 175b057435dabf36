//! The node's snapshots as files in `<data_dir>/snapshot/`, never held in memory:
//! - `current`: the last built or installed snapshot, sent to followers, kept across restarts;
//! - `building-N.tmp`: a snapshot being written from a point-in-time view of the store;
//! - `incoming-N.tmp`: a snapshot being received from the leader;
//! - `installing`: a received snapshot whose install into the store is under way.
//!
//! File format: `meta_len: u32 BE ‖ SnapshotMeta as JSON ‖ the store's snapshot stream`
//! (`hakv_store`'s format, which carries its own CRC-32). A file becomes `current` by an
//! fsynced rename, so a crash leaves either the old or the new snapshot.
//!
//! Installing is crash-safe: the received file is fsynced and renamed to `installing`, the
//! store marks itself as installing (reads refused) and replaces its contents in bounded
//! batches, the file is renamed to `current`, and the store clears its mark in its last,
//! fsynced batch. A member that dies in between finds the mark at start and repeats the
//! install from `installing` (or from `current`, if the rename had happened).

use crate::error::RaftStoreError;
use crate::snapshot_data::SnapshotData;
use crate::{LogId, NodeId, StoredMembership};
use hakv_store::{SnapshotView, StateMachine};
use openraft::{BasicNode, SnapshotMeta};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// `meta` keys of the state machine written atomically with every applied batch.
pub(crate) const LAST_APPLIED_KEY: &[u8] = b"raft/last_applied";
pub(crate) const MEMBERSHIP_KEY: &[u8] = b"raft/membership";

/// Longest meta header accepted when reading a snapshot file (a membership of many nodes).
const MAX_META_BYTES: u32 = 16 << 20;

#[derive(Clone)]
pub(crate) struct SnapshotFile {
    dir: PathBuf,
    /// Serializes replacements of `current`: a builder that read an older state must not
    /// overwrite a snapshot installed meanwhile.
    lock: Arc<Mutex<()>>,
    /// Numbers temporary files.
    next_tmp: Arc<AtomicU64>,
    /// Size of the last snapshot built or installed here (the snapshot policy reads it).
    pub(crate) last_bytes: Arc<AtomicU64>,
}

impl SnapshotFile {
    /// Opens the directory and removes temporary files a crash left behind.
    pub(crate) fn open(dir: PathBuf) -> Result<SnapshotFile, RaftStoreError> {
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "tmp") {
                fs::remove_file(&path)?;
            }
        }
        let last_bytes = fs::metadata(dir.join("current")).map_or(0, |m| m.len());
        Ok(SnapshotFile {
            dir,
            lock: Arc::new(Mutex::new(())),
            next_tmp: Arc::new(AtomicU64::new(0)),
            last_bytes: Arc::new(AtomicU64::new(last_bytes)),
        })
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join("current")
    }

    fn installing_path(&self) -> PathBuf {
        self.dir.join("installing")
    }

    fn tmp_path(&self, kind: &str) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{kind}-{n}.tmp"))
    }

    /// Makes `path` the current snapshot by an fsynced rename.
    fn make_current(&self, path: &Path) -> Result<(), RaftStoreError> {
        fs::rename(path, self.current_path())?;
        // The rename itself is durable only once the directory is synced.
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// The current snapshot, if one was ever saved: its meta and the open file.
    pub(crate) fn current(&self) -> Result<Option<(Meta, SnapshotData)>, RaftStoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = self.current_path();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = read_meta(&mut file)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Some((
            meta,
            SnapshotData::new(tokio::fs::File::from_std(file), path),
        )))
    }

    /// A new empty file to receive a snapshot into.
    pub(crate) fn incoming(&self) -> Result<SnapshotData, RaftStoreError> {
        let path = self.tmp_path("incoming");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(SnapshotData::new(tokio::fs::File::from_std(file), path))
    }

    /// Writes a snapshot of `state` from one point-in-time view and makes it current
    /// (unless a newer one was installed meanwhile, which is then returned instead).
    pub(crate) fn build(&self, state: &StateMachine) -> Result<(Meta, SnapshotData), RaftStoreError> {
        let view = state.snapshot_view()?;
        let meta = meta_of(&view)?;
        let tmp = self.tmp_path("building");
        let started = std::time::Instant::now();
        let written = write_snapshot_file(&tmp, &meta, |out| Ok(view.write_to(out)?));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        drop(view);
        // Everything exported is now fsynced before anyone may purge the log up to it.
        state.persist()?;
        let bytes = fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
        self.last_bytes.store(bytes, Ordering::Relaxed);
        let elapsed = started.elapsed();
        metrics::counter!("hakv_raft_snapshots_built_total").increment(1);
        metrics::histogram!("hakv_raft_snapshot_build_seconds").record(elapsed.as_secs_f64());
        tracing::info!(
            snapshot = %meta.snapshot_id,
            bytes,
            elapsed_ms = elapsed.as_millis() as u64,
            "snapshot built"
        );
        {
            let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if self
                .current_meta()?
                .is_some_and(|current| current.last_log_id > meta.last_log_id)
            {
                fs::remove_file(&tmp)?;
            } else {
                self.make_current(&tmp)?;
            }
        }
        self.current()?
            .ok_or_else(|| RaftStoreError::corrupt("snapshot file", "vanished after it was written"))
    }

    fn current_meta(&self) -> Result<Option<Meta>, RaftStoreError> {
        match File::open(self.current_path()) {
            Ok(mut file) => Ok(Some(read_meta(&mut file)?)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Installs the received snapshot at `received` (which must carry `meta`) into `state`,
    /// crash-safely (see the module docs); `reset` runs before the state starts to change.
    /// `pace` (bytes per second) is how fast the snapshot arrived: the install reads it no
    /// faster. A leader paces a transfer while it serves clients; ingested at full speed, the
    /// gigabyte that took it 16 s to send was written in 2-3 s, and on a disk the leader shares
    /// (one machine) its log's fsyncs waited behind it (docs/benchmarks.md). Sent unpaced, a
    /// snapshot arrives faster than it can be ingested, and the pace changes nothing.
    pub(crate) fn install(
        &self,
        state: &StateMachine,
        meta: &Meta,
        received: &Path,
        verified: bool,
        pace: Option<u64>,
        reset: &dyn Fn(hakv_api::Revision),
    ) -> Result<(), RaftStoreError> {
        let mut file = File::open(received)?;
        let carried = read_meta(&mut file)?;
        if carried.snapshot_id != meta.snapshot_id || carried.last_log_id != meta.last_log_id {
            return Err(RaftStoreError::corrupt(
                "received snapshot",
                format!(
                    "file holds {} but {} was announced",
                    carried.snapshot_id, meta.snapshot_id
                ),
            ));
        }
        file.sync_all()?;
        drop(file);
        let installing = self.installing_path();
        fs::rename(received, &installing)?;
        File::open(&self.dir)?.sync_all()?;
        self.import(state, &installing, meta, verified, pace, reset)?;
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(installed) = fs::metadata(&installing) {
            self.last_bytes.store(installed.len(), Ordering::Relaxed);
        }
        self.make_current(&installing)
    }

    /// True when `current` exists in a format older than this build's (written before the
    /// store's snapshots carried a checksum): it could not be installed by any member, so it
    /// must be rebuilt before it is ever sent.
    pub(crate) fn current_is_outdated(&self) -> Result<bool, RaftStoreError> {
        let mut file = match File::open(self.current_path()) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        read_meta(&mut file)?;
        let mut head = [0u8; 9];
        let read = file.read(&mut head)?;
        Ok(!StateMachine::is_current_snapshot_format(&head[..read]))
    }

    /// Repeats an install that a crash interrupted, if the store says one was.
    pub(crate) fn resume_install(
        &self,
        state: &StateMachine,
        reset: &dyn Fn(hakv_api::Revision),
    ) -> Result<(), RaftStoreError> {
        if !state.is_installing() {
            return Ok(());
        }
        let installing = self.installing_path();
        let source = if installing.exists() {
            installing.clone()
        } else {
            self.current_path()
        };
        let meta = read_meta(&mut File::open(&source)?)?;
        tracing::warn!(snapshot = %meta.snapshot_id, "repeating a snapshot install that was interrupted");
        self.import(state, &source, &meta, false, None, reset)?;
        if source == installing {
            let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            self.make_current(&installing)?;
        }
        Ok(())
    }

    fn import(
        &self,
        state: &StateMachine,
        path: &Path,
        meta: &Meta,
        verified: bool,
        pace: Option<u64>,
        reset: &dyn Fn(hakv_api::Revision),
    ) -> Result<(), RaftStoreError> {
        let extra = applied_meta(&meta.last_log_id, &meta.last_membership);
        let started = std::time::Instant::now();
        let open = || open_store_stream(path).map(|stream| Paced::new(stream, pace));
        let import = if verified {
            state.import_verified_snapshot_from(open, &extra, reset)?
        } else {
            state.import_snapshot_from(open, &extra, reset)?
        };
        tracing::info!(
            snapshot = %meta.snapshot_id,
            keys = import.keys,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot installed"
        );
        Ok(())
    }
}

/// The shortest sleep of a [`Paced`] reader.
const PACED_SLEEP: std::time::Duration = std::time::Duration::from_millis(2);

/// A reader that keeps to `rate` bytes per second from its first read (`None`: no limit).
struct Paced<R> {
    inner: R,
    rate: Option<u64>,
    started: Option<std::time::Instant>,
    read: u64,
}

impl<R> Paced<R> {
    fn new(inner: R, rate: Option<u64>) -> Paced<R> {
        Paced {
            inner,
            rate: rate.filter(|rate| *rate > 0),
            started: None,
            read: 0,
        }
    }
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(rate) = self.rate {
            let due = std::time::Duration::from_secs_f64(self.read as f64 / rate as f64);
            // Sleeps of at least 2 ms: the work between two sleeps is then a fraction of a
            // millisecond of a core, which a client's request on the same machine waits
            // behind at most; finer sleeps would cost more in wake-ups than they smooth.
            if let Some(ahead) = due.checked_sub(started.elapsed())
                && ahead >= PACED_SLEEP
            {
                std::thread::sleep(ahead);
            }
        }
        Ok(n)
    }
}

/// A snapshot is written at most this fast, and written back every [`WRITE_BACK_EVERY_BYTES`]:
/// written at full speed and synced once at the end, a snapshot of GBs filled the page cache
/// with dirty pages whose final flush held every other fsync (the Raft log's appends) for
/// seconds, long enough to look like a dead leader (bench/large-state.sh, docs/benchmarks.md).
pub(crate) const BUILD_BYTES_PER_SECOND: u64 = 96 << 20;
/// Written back with `sync_file_range` (`hakv_store::writeback`), not `fdatasync` every 8 MiB
/// as before: each of those flushed the device's cache, and a build running while a member
/// installed a snapshot held the leader's log appends (on a shared disk) for up to 100 ms.
const WRITE_BACK_EVERY_BYTES: u64 = 1 << 20;

/// A file writer that writes back what it wrote every [`WRITE_BACK_EVERY_BYTES`] and keeps to
/// [`BUILD_BYTES_PER_SECOND`], so that a large snapshot never holds up the disk.
struct Gentle<'a> {
    file: &'a File,
    started: std::time::Instant,
    written: u64,
    not_written_back: u64,
}

impl Write for Gentle<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.not_written_back += n as u64;
        if self.not_written_back >= WRITE_BACK_EVERY_BYTES {
            hakv_store::writeback::write_back(self.file);
            self.not_written_back = 0;
            let due = std::time::Duration::from_secs_f64(self.written as f64 / BUILD_BYTES_PER_SECOND as f64);
            if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `meta` and then what `body` writes to a new file at `path`, fsynced.
/// The meta of a snapshot written from `view`: the log position and membership come from the
/// same view as the data, never from a newer apply.
pub(crate) fn meta_of(view: &SnapshotView<'_>) -> Result<Meta, RaftStoreError> {
    let last_log_id: Option<LogId> = match view.meta.get(LAST_APPLIED_KEY) {
        Some(bytes) => decode_json::<Option<LogId>>(bytes)?,
        None => None,
    };
    let last_membership: StoredMembership = match view.meta.get(MEMBERSHIP_KEY) {
        Some(bytes) => decode_json(bytes)?,
        None => StoredMembership::default(),
    };
    let built_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let snapshot_id = match &last_log_id {
        Some(id) => format!("{}-{}-{built_at}", id.leader_id, id.index),
        None => format!("empty-{built_at}"),
    };
    Ok(Meta {
        last_log_id,
        last_membership,
        snapshot_id,
    })
}

/// Writes the header of the snapshot file format: the meta's length and the meta.
pub(crate) fn write_meta(out: &mut impl Write, meta: &Meta) -> Result<(), RaftStoreError> {
    let meta_json = encode_json(meta);
    let meta_len =
        u32::try_from(meta_json.len()).map_err(|_| RaftStoreError::corrupt("snapshot meta", "too long"))?;
    out.write_all(&meta_len.to_be_bytes())?;
    out.write_all(&meta_json)?;
    Ok(())
}

fn write_snapshot_file(
    path: &Path,
    meta: &Meta,
    body: impl FnOnce(&mut BufWriter<Gentle<'_>>) -> Result<u64, RaftStoreError>,
) -> Result<(), RaftStoreError> {
    let file = File::create(path)?;
    let gentle = Gentle {
        file: &file,
        started: std::time::Instant::now(),
        written: 0,
        not_written_back: 0,
    };
    let mut out = BufWriter::with_capacity(1 << 20, gentle);
    write_meta(&mut out, meta)?;
    body(&mut out)?;
    out.flush()?;
    drop(out);
    (&file).flush()?;
    file.sync_all()?;
    Ok(())
}

/// Reads a snapshot file's meta header, leaving `file` at the start of the store stream.
pub(crate) fn read_meta(file: &mut impl Read) -> Result<Meta, RaftStoreError> {
    let corrupt = |reason: &str| RaftStoreError::corrupt("snapshot file", reason);
    let mut header = [0u8; 4];
    file.read_exact(&mut header)
        .map_err(|_| corrupt("shorter than its header"))?;
    let len = u32::from_be_bytes(header);
    if len > MAX_META_BYTES {
        return Err(corrupt("meta header too long"));
    }
    let mut meta_json = vec![0u8; len as usize];
    file.read_exact(&mut meta_json)
        .map_err(|_| corrupt("truncated meta"))?;
    serde_json::from_slice(&meta_json).map_err(|e| RaftStoreError::corrupt("snapshot file", e))
}

/// The store's snapshot stream inside the snapshot file at `path`.
fn open_store_stream(path: &Path) -> io::Result<BufReader<File>> {
    let mut file = File::open(path)?;
    read_meta(&mut file).map_err(io::Error::other)?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

/// The state machine's `meta` entries that record how far it has applied the log, written
/// atomically with what they describe (an applied batch, an installed snapshot).
pub(crate) fn applied_meta(
    last_applied: &Option<LogId>,
    membership: &StoredMembership,
) -> Vec<(&'static [u8], Vec<u8>)> {
    vec![
        (LAST_APPLIED_KEY, encode_json(last_applied)),
        (MEMBERSHIP_KEY, encode_json(membership)),
    ]
}

pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, RaftStoreError> {
    serde_json::from_slice(bytes).map_err(|e| RaftStoreError::corrupt("state machine raft meta", e))
}

pub(crate) fn encode_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("openraft's ids and memberships serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_reader_reads_everything_no_faster_than_its_rate() {
        let data = vec![7u8; 512 << 10];
        let mut paced = Paced::new(&data[..], Some(2 << 20));
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        // Read in pieces, as the store's BufReader does.
        let mut piece = vec![0u8; 64 << 10];
        loop {
            let n = paced.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&piece[..n]);
        }
        assert_eq!(out, data);
        // 512 KiB at 2 MiB/s: a quarter of a second at least (the last sleep may be skipped
        // when less than `PACED_SLEEP` ahead).
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(240),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn no_rate_or_a_zero_rate_is_no_limit() {
        assert_eq!(Paced::new(&b""[..], None).rate, None);
        assert_eq!(Paced::new(&b""[..], Some(0)).rate, None);
    }
}
