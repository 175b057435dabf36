//! A snapshot streamed straight from the state machine's current view, for a member that must
//! catch up (a new or wiped member, or one behind the leader's purged log): the only snapshot
//! a member ever sends, since a checkpoint keeps no copy of the state (`snapshot_file`).
//!
//! Why the current view and not one at the checkpoint's position: the checkpoint lags the
//! state by up to a quarter of its size (`snapshot_policy`), and everything after it would
//! reach the member as log appends, which openraft 0.9 sends one at a time, each read from the
//! leader's log, encoded, written and fsynced by the member before the next (about 11 ms per
//! MiB, measured, against ~1.5 ms per MiB for snapshot frames): with a 1 GB state, that tail
//! was half of a wiped member's catch-up. A snapshot of the current view leaves the member only
//! what is applied while it travels. openraft takes a snapshot newer than the one it chose to
//! send (the replication counts the member as matching up to the meta it sent) and keeps the
//! log after it.
//!
//! A background thread writes the stream in the snapshot file format from one fjall view into a
//! bounded channel, so the receiver cannot tell it from a file, nothing is written to the
//! sender's disk and its memory is a few chunks. Like a backup's, the view keeps old versions
//! from being compacted away until the transfer ends.

use crate::NodeId;
use crate::error::RaftStoreError;
use crate::snapshot_data::SnapshotData;
use crate::snapshot_file::{meta_of, write_meta};
use hakv_store::{ChunkWriter, StateMachine, background};
use openraft::{BasicNode, SnapshotMeta};
use std::io::{self, Write};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Chunks of one transfer frame, at most 2 MiB ahead of the sender.
const CHUNK_BYTES: usize = crate::snapshot_transfer::FRAME;
const QUEUED_CHUNKS: usize = (2 << 20) / CHUNK_BYTES;

/// The current state as a snapshot: its meta at once, its bytes as the reader takes them.
/// When the state is still at the position of `checkpoint`, the snapshot carries the
/// checkpoint's meta (its id included): it is the same snapshot.
pub(crate) async fn stream(
    state: Arc<StateMachine>,
    checkpoint: SnapshotMeta<NodeId, BasicNode>,
) -> Result<(SnapshotMeta<NodeId, BasicNode>, SnapshotData), RaftStoreError> {
    let (mut out, chunks) = ChunkWriter::channel(CHUNK_BYTES, QUEUED_CHUNKS);
    // A thread of its own at background priority: the scan must not take cores from the
    // leader's clients (hakv_store::background).
    let (meta_tx, meta_rx) = oneshot::channel();
    let scan = move || {
        let view = match state.snapshot_view() {
            Ok(view) => view,
            Err(e) => return drop(meta_tx.send(Err(RaftStoreError::from(e)))),
        };
        let meta = match meta_of(&view) {
            Ok(meta) if meta.last_log_id == checkpoint.last_log_id => checkpoint,
            Ok(meta) => meta,
            Err(e) => return drop(meta_tx.send(Err(e))),
        };
        let _ = meta_tx.send(Ok(meta.clone()));
        let written = write_meta(&mut out, &meta)
            .and_then(|()| Ok(view.write_to(&mut out)?))
            .and_then(|_| Ok(out.flush()?));
        match written {
            Ok(()) => metrics::counter!("hakv_raft_live_snapshots_total").increment(1),
            // The transfer ended (refused, cancelled, the member gone): nobody to tell.
            Err(_) if out.reader_gone() => {}
            Err(e) => {
                tracing::warn!(error = %e, "a live snapshot stream failed");
                out.fail(io::Error::other(e));
            }
        }
    };
    background::spawn("hakv-live-snap", scan).map_err(RaftStoreError::from)?;
    let meta = meta_rx
        .await
        .map_err(|_| RaftStoreError::Task("the live snapshot task stopped".into()))??;
    Ok((meta, SnapshotData::live(chunks)))
}
