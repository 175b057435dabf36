//! The node's snapshots on disk, in `<data_dir>/snapshot/`, never a copy of the state:
//! - `checkpoint`: the meta (log position, membership) of the last *checkpoint*, a snapshot
//!   whose data is the state machine itself. A checkpoint fsyncs the state machine's journal:
//!   from then on the state is durable on its own up to that position, and the log before it
//!   may be purged. A member that needs a snapshot is sent one streamed from a point-in-time
//!   view of the state (`live_snapshot`), so nothing else needs to be kept;
//! - `incoming-N.tmp`: a snapshot being received from the leader;
//! - `installing`: a received snapshot whose install into the store is under way;
//! - `installed-N.tmp`: an installed snapshot being removed, gradually and in the background
//!   (`hakv_store::removal`);
//! - `current`: a whole snapshot file, as builds before checkpoints kept; taken over at open
//!   (its meta becomes the checkpoint, the file goes).
//!
//! Why checkpoints: a snapshot that copies the state rewrote the whole state on every member
//! every few minutes (a 1 GB state: 10.6 s of reading and writing at a gentle pace), and each
//! such build cost the cluster up to a third of its throughput while it ran (docs/benchmarks.md,
//! Soak). A checkpoint costs one fsync, whatever the state's size.
//!
//! File formats: a snapshot is `meta_len: u32 BE ‖ SnapshotMeta as JSON ‖ the store's snapshot
//! stream` (`hakv_store`'s format, which carries its own CRC-32); the checkpoint file is that
//! header alone. A file takes its place by an fsynced rename, so a crash leaves the old or the
//! new one.
//!
//! Installing is crash-safe: the received file is fsynced and renamed to `installing`, the
//! store marks itself as installing (reads refused) and replaces its contents in bounded
//! batches, clearing its mark in its last, fsynced batch; then the checkpoint records the
//! snapshot's position and the file is renamed away to be removed. A member that dies in
//! between finds the mark at start and repeats the install from `installing`.

use crate::error::RaftStoreError;
use crate::snapshot_data::SnapshotData;
use crate::{LogId, NodeId, StoredMembership};
use hakv_store::{SnapshotView, StateMachine, removal};
use openraft::{BasicNode, SnapshotMeta};
use std::fs::{self, File};
use std::io::{self, BufReader, ErrorKind, Read, Write};
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
    /// Serializes replacements of `checkpoint`: a checkpoint taken from an older view must not
    /// replace the position of a snapshot installed meanwhile.
    lock: Arc<Mutex<()>>,
    /// Numbers temporary files.
    next_tmp: Arc<AtomicU64>,
}

impl SnapshotFile {
    /// Opens the directory and removes temporary files a crash left behind.
    pub(crate) fn open(dir: PathBuf) -> Result<SnapshotFile, RaftStoreError> {
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "tmp") {
                removal::remove_gradually(&path)?;
            }
        }
        Ok(SnapshotFile {
            dir,
            lock: Arc::new(Mutex::new(())),
            next_tmp: Arc::new(AtomicU64::new(0)),
        })
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// Where builds before checkpoints kept a whole snapshot.
    fn legacy_current_path(&self) -> PathBuf {
        self.dir.join("current")
    }

    fn installing_path(&self) -> PathBuf {
        self.dir.join("installing")
    }

    fn tmp_path(&self, kind: &str) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{kind}-{n}.tmp"))
    }

    /// The meta of the last checkpoint, if one was ever taken.
    pub(crate) fn checkpoint_meta(&self) -> Result<Option<Meta>, RaftStoreError> {
        match File::open(self.checkpoint_path()) {
            Ok(mut file) => Ok(Some(read_meta(&mut file)?)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Records `meta` as the checkpoint by an fsynced rename. The caller holds `lock`.
    fn write_checkpoint(&self, meta: &Meta) -> Result<(), RaftStoreError> {
        let tmp = self.tmp_path("checkpoint");
        let written = File::create(&tmp)
            .map_err(RaftStoreError::from)
            .and_then(|mut file| {
                let mut header = Vec::new();
                write_meta(&mut header, meta)?;
                file.write_all(&header)?;
                file.sync_all()?;
                Ok(())
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, self.checkpoint_path())?;
        // The rename itself is durable only once the directory is synced.
        File::open(&self.dir)?.sync_all()?;
        Ok(())
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

    /// Takes a checkpoint of `state` at the position of one point-in-time view: makes the
    /// state durable up to there (a journal fsync) and records the position. Returns the
    /// checkpoint now on record: this one, or a newer one installed meanwhile.
    pub(crate) fn checkpoint(&self, state: &StateMachine) -> Result<Meta, RaftStoreError> {
        let started = std::time::Instant::now();
        let meta = meta_of(&state.snapshot_view()?)?;
        // Everything the view holds was applied before this fsync, so it is on disk before
        // anyone may purge the log up to the view's position.
        state.persist()?;
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(newer) = self
            .checkpoint_meta()?
            .filter(|recorded| recorded.last_log_id > meta.last_log_id)
        {
            return Ok(newer);
        }
        self.write_checkpoint(&meta)?;
        let elapsed = started.elapsed();
        metrics::counter!("hakv_raft_checkpoints_total").increment(1);
        metrics::histogram!("hakv_raft_checkpoint_seconds").record(elapsed.as_secs_f64());
        tracing::debug!(
            snapshot = %meta.snapshot_id,
            elapsed_ms = elapsed.as_millis() as u64,
            "checkpoint taken"
        );
        Ok(meta)
    }

    /// Installs the received snapshot at `received` (which must carry `meta`) into `state`,
    /// crash-safely (see the module docs); `reset` runs before the state starts to change.
    /// `pace` (bytes per second) is how fast a paced transfer arrived: the install reads it no
    /// faster. A leader paces a transfer while it serves clients; ingested at full speed, the
    /// gigabyte that took it 16 s to send was written in 2-3 s, and on a disk the leader shares
    /// (one machine) its log's fsyncs waited behind it (docs/benchmarks.md). `None` for a
    /// transfer sent unpaced (no client waiting): installed at full speed
    /// (`peer_server::install_pace`).
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
        self.installed(meta, &installing)
    }

    /// After an install from `source`: the snapshot's position becomes the checkpoint (the
    /// store's last batch was fsynced) and the file goes, renamed out of the way at once and
    /// removed gradually in the background (`hakv_store::removal`; a crash leaves a `.tmp`
    /// file that the next start removes).
    fn installed(&self, meta: &Meta, source: &Path) -> Result<(), RaftStoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.write_checkpoint(meta)?;
        let discarded = self.tmp_path("installed");
        fs::rename(source, &discarded)?;
        removal::remove_gradually_in_background(discarded);
        Ok(())
    }

    /// Repeats an install that a crash interrupted, if the store says one was; then takes over
    /// a whole snapshot an older build kept (its position becomes the checkpoint: the store was
    /// fsynced when it was built or installed) and removes a received file whose install never
    /// began.
    pub(crate) fn recover(
        &self,
        state: &StateMachine,
        reset: &dyn Fn(hakv_api::Revision),
    ) -> Result<(), RaftStoreError> {
        let installing = self.installing_path();
        let legacy = self.legacy_current_path();
        if state.is_installing() {
            // An older build renamed `installing` to `current` before clearing the mark.
            let source = if installing.exists() {
                installing.clone()
            } else {
                legacy.clone()
            };
            let meta = read_meta(&mut File::open(&source)?)?;
            tracing::warn!(snapshot = %meta.snapshot_id, "repeating a snapshot install that was interrupted");
            self.import(state, &source, &meta, false, None, reset)?;
            self.installed(&meta, &source)?;
        }
        removal::remove_gradually(&installing)?;
        match File::open(&legacy) {
            Ok(mut file) => {
                let meta = read_meta(&mut file)?;
                let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if self
                    .checkpoint_meta()?
                    .is_none_or(|recorded| recorded.last_log_id < meta.last_log_id)
                {
                    self.write_checkpoint(&meta)?;
                }
                fs::remove_file(&legacy)?;
                tracing::info!(snapshot = %meta.snapshot_id, "a stored snapshot became the checkpoint");
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
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

    /// A crash can leave a received file, a checkpoint being written, or an installed file
    /// being removed: the next open removes them all and keeps the checkpoint.
    #[test]
    fn opening_removes_what_a_crash_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let leftovers = ["incoming-3.tmp", "checkpoint-1.tmp", "installed-0.tmp"];
        for name in leftovers {
            fs::write(dir.path().join(name), vec![1u8; 3 << 20]).unwrap();
        }
        fs::write(dir.path().join("checkpoint"), b"kept").unwrap();
        SnapshotFile::open(dir.path().to_path_buf()).unwrap();
        for name in leftovers {
            assert!(!dir.path().join(name).exists(), "{name}");
        }
        assert!(dir.path().join("checkpoint").exists());
    }

    #[test]
    fn no_rate_or_a_zero_rate_is_no_limit() {
        assert_eq!(Paced::new(&b""[..], None).rate, None);
        assert_eq!(Paced::new(&b""[..], Some(0)).rate, None);
    }
}
