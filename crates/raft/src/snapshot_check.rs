//! What a member does with a snapshot while it is still arriving, so that less is left once
//! the last frame is in: the file's pages are written back to disk as they arrive, a megabyte
//! at a time, so the fsync before the install has little left to do (it used to flush a
//! gigabyte at once: 0.57 s idle, and under load a 314 ms p99 window for the clients of a
//! leader on the same disk, docs/benchmarks.md); and the store's stream is verified
//! (structure, key order, counts, its CRC-32) by a background thread fed the same frames, so
//! the install still refuses a file that is not a whole snapshot before it touches the old
//! state, without reading the file an extra time.

use crate::snapshot_file::read_meta;
use bytes::Bytes;
use hakv_store::{StateMachine, background};
use std::io::{self, Read};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Frames queued ahead of the verifier (4 MiB of a sender's frames): it checks faster than
/// frames arrive, and a full queue only slows the receiver to its pace.
const QUEUED_FRAMES: usize = (4 << 20) / crate::snapshot_transfer::FRAME;

/// Verifies the snapshot file's bytes as they are received.
pub(crate) struct StreamCheck {
    frames: mpsc::Sender<Bytes>,
    verdict: oneshot::Receiver<Result<(), String>>,
}

impl StreamCheck {
    pub(crate) fn start() -> StreamCheck {
        let (frames, receiver) = mpsc::channel(QUEUED_FRAMES);
        let (said, verdict) = oneshot::channel();
        let check = move || {
            let mut input = FrameReader {
                frames: receiver,
                pending: Bytes::new(),
            };
            let mut whole = || -> Result<(), String> {
                read_meta(&mut input).map_err(|e| e.to_string())?;
                StateMachine::verify_snapshot(&mut input).map_err(|e| e.to_string())?;
                // The store's stream ends the file: anything after it is not a snapshot we made.
                match input.read(&mut [0u8; 1]) {
                    Ok(0) => Ok(()),
                    _ => Err("bytes after the end of the snapshot".into()),
                }
            };
            let _ = said.send(whole());
        };
        // Not started: the verdict says so, and the transfer is refused.
        if let Err(e) = background::spawn("hakv-snap-check", check) {
            tracing::warn!(error = %e, "could not start checking a snapshot as it arrives");
        }
        StreamCheck { frames, verdict }
    }

    /// Hands the next bytes of the file to the verifier (a verifier that already failed
    /// takes nothing more: its verdict says why).
    pub(crate) async fn feed(&self, bytes: Bytes) {
        let _ = self.frames.send(bytes).await;
    }

    /// Whether everything fed was a whole, well-formed snapshot.
    pub(crate) async fn verdict(self) -> Result<(), String> {
        drop(self.frames);
        self.verdict
            .await
            .map_err(|_| "the snapshot check stopped before its verdict".to_string())?
    }
}

/// The frames as one `Read`, for the store's verifier.
struct FrameReader {
    frames: mpsc::Receiver<Bytes>,
    pending: Bytes,
}

impl Read for FrameReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            match self.frames.blocking_recv() {
                Some(bytes) => self.pending = bytes,
                None => return Ok(0),
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// Starts writing a file's pages back to disk as they arrive, one step in flight after each
/// [`WRITEBACK_STEP`] received, so they do not pile up for the final fsync.
///
/// Why `sync_file_range` in small steps: `hakv_store::writeback`. Each step covers the whole
/// file, not the bytes just counted: the receiver writes through tokio's file, whose writes
/// land a moment after they are handed over, so a step over only the new range could miss
/// them, and those pages would wait for the final fsync (which then had a gigabyte to write: a
/// 300 ms stall of the leader's log, docs/benchmarks.md). Finding the dirty pages costs
/// little. The install's fsync of the whole file makes it durable; this only spreads the work.
pub(crate) struct Writeback {
    file: Arc<std::fs::File>,
    unsubmitted: u64,
    in_flight: Option<JoinHandle<()>>,
}

const WRITEBACK_STEP: u64 = 1 << 20;

impl Writeback {
    pub(crate) fn new(file: std::fs::File) -> Writeback {
        Writeback {
            file: Arc::new(file),
            unsubmitted: 0,
            in_flight: None,
        }
    }

    pub(crate) fn wrote(&mut self, bytes: u64) {
        self.unsubmitted += bytes;
        if self.unsubmitted < WRITEBACK_STEP
            || self.in_flight.as_ref().is_some_and(|step| !step.is_finished())
        {
            return;
        }
        self.unsubmitted = 0;
        let file = self.file.clone();
        // Best effort: the install fsyncs the whole file before it relies on it.
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            hakv_store::writeback::write_back(&file)
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot_file::write_meta;
    use hakv_store::StoreConfig;

    fn snapshot_file_bytes() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let state = StateMachine::open(&StoreConfig::new(dir.path().to_path_buf(), 1 << 20)).unwrap();
        let export = state.export_snapshot().unwrap();
        let mut bytes = Vec::new();
        write_meta(&mut bytes, &Default::default()).unwrap();
        bytes.extend_from_slice(&export.bytes);
        bytes
    }

    async fn check(bytes: &[u8], frame: usize) -> Result<(), String> {
        let check = StreamCheck::start();
        for chunk in bytes.chunks(frame) {
            check.feed(Bytes::copy_from_slice(chunk)).await;
        }
        check.verdict().await
    }

    #[tokio::test]
    async fn a_whole_snapshot_passes_in_frames_of_any_size() {
        let bytes = snapshot_file_bytes();
        for frame in [1, 7, bytes.len()] {
            assert_eq!(check(&bytes, frame).await, Ok(()), "frames of {frame}");
        }
    }

    #[tokio::test]
    async fn a_damaged_short_or_padded_snapshot_fails() {
        let bytes = snapshot_file_bytes();
        let mut damaged = bytes.clone();
        let middle = damaged.len() - 6;
        damaged[middle] ^= 1;
        assert!(check(&damaged, 5).await.is_err());
        assert!(check(&bytes[..bytes.len() - 1], 5).await.is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(check(&padded, 5).await.is_err());
    }
}
