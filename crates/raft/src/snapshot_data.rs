//! The snapshot data openraft passes around, never the snapshot's bytes in memory: either an
//! open file on disk (with its path, so that an installed snapshot can be renamed into place),
//! or a live stream written from the state machine's current view as it is read
//! (`live_snapshot`), for a member that must catch up.

use bytes::Bytes;
use hakv_store::Chunk;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// A snapshot in the file format `meta_len: u32 BE ‖ SnapshotMeta as JSON ‖ the store's
/// snapshot stream` (see `snapshot_file`), from a file or from a live stream.
#[derive(Debug)]
pub struct SnapshotData {
    source: Source,
}

#[derive(Debug)]
enum Source {
    File {
        file: File,
        path: PathBuf,
        /// Checked whole as it was received (`snapshot_check`): the install need not again.
        verified: bool,
        /// How fast to install it (bytes per second): how fast it arrived, when a leader
        /// paced it (`peer_server::install_pace`).
        install_pace: Option<u64>,
    },
    /// Read-only and read once, from its start: chunks as the writer makes them.
    Live {
        chunks: mpsc::Receiver<Chunk>,
        pending: Bytes,
    },
}

impl SnapshotData {
    pub(crate) fn new(file: File, path: PathBuf) -> SnapshotData {
        SnapshotData {
            source: Source::File {
                file,
                path,
                verified: false,
                install_pace: None,
            },
        }
    }

    pub(crate) fn live(chunks: mpsc::Receiver<Chunk>) -> SnapshotData {
        SnapshotData {
            source: Source::Live {
                chunks,
                pending: Bytes::new(),
            },
        }
    }

    /// Data that cannot be read: a checkpoint's meta stands alone where openraft wants only
    /// the meta (at start, and the result of a build), since a checkpoint's data is the state
    /// machine itself (`snapshot_file`); and in place of a live stream that could not start.
    /// Reading it fails, so it can never pass for a snapshot.
    pub(crate) fn unavailable() -> SnapshotData {
        let (tx, chunks) = mpsc::channel(1);
        let refusal = io::Error::new(
            io::ErrorKind::Unsupported,
            "a checkpoint has no data of its own: a snapshot to send is streamed from the state",
        );
        tx.try_send(Err(refusal)).expect("a new channel has room for one");
        SnapshotData::live(chunks)
    }

    /// The file's path; `None` for a live stream, which has no file.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File { path, .. } => Some(path),
            Source::Live { .. } => None,
        }
    }

    /// Records that the file was checked whole as it was received.
    pub(crate) fn mark_verified(&mut self) {
        if let Source::File { verified, .. } = &mut self.source {
            *verified = true;
        }
    }

    pub(crate) fn is_verified(&self) -> bool {
        matches!(self.source, Source::File { verified: true, .. })
    }

    /// Records how fast to install the file, in bytes per second.
    pub(crate) fn set_install_pace(&mut self, bytes_per_second: u64) {
        if let Source::File { install_pace, .. } = &mut self.source {
            *install_pace = Some(bytes_per_second);
        }
    }

    /// How fast to install the file, if it was received from a leader that paced it
    /// (`snapshot_file::SnapshotFile::install`).
    pub(crate) fn install_pace(&self) -> Option<u64> {
        match self.source {
            Source::File { install_pace, .. } => install_pace,
            Source::Live { .. } => None,
        }
    }

    /// Another handle to the file, for syncing it from another thread.
    pub(crate) async fn std_handle(&self) -> io::Result<std::fs::File> {
        match &self.source {
            Source::File { file, .. } => Ok(file.try_clone().await?.into_std().await),
            Source::Live { .. } => Err(live_is_read_only()),
        }
    }

    /// Positions a file at its start (a live stream always reads from its start).
    pub(crate) async fn rewind(&mut self) -> io::Result<()> {
        use tokio::io::AsyncSeekExt;
        match &mut self.source {
            Source::File { file, .. } => file.seek(io::SeekFrom::Start(0)).await.map(drop),
            Source::Live { .. } => Ok(()),
        }
    }
}

fn live_is_read_only() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a live snapshot stream is read-only")
}

impl AsyncRead for SnapshotData {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().source {
            Source::File { file, .. } => Pin::new(file).poll_read(cx, buf),
            Source::Live { chunks, pending } => {
                while pending.is_empty() {
                    match ready!(chunks.poll_recv(cx)) {
                        Some(Ok(chunk)) => *pending = chunk,
                        Some(Err(e)) => return Poll::Ready(Err(e)),
                        None => return Poll::Ready(Ok(())), // the end of the stream
                    }
                }
                let n = pending.len().min(buf.remaining());
                buf.put_slice(&pending.split_to(n));
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().source {
            Source::File { file, .. } => Pin::new(file).poll_write(cx, buf),
            Source::Live { .. } => Poll::Ready(Err(live_is_read_only())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().source {
            Source::File { file, .. } => Pin::new(file).poll_flush(cx),
            Source::Live { .. } => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().source {
            Source::File { file, .. } => Pin::new(file).poll_shutdown(cx),
            Source::Live { .. } => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        match &mut self.get_mut().source {
            Source::File { file, .. } => Pin::new(file).start_seek(position),
            Source::Live { .. } => Err(live_is_read_only()),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        match &mut self.get_mut().source {
            Source::File { file, .. } => Pin::new(file).poll_complete(cx),
            Source::Live { .. } => Poll::Ready(Err(live_is_read_only())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_live_stream_reads_its_chunks_then_ends_or_fails() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(Bytes::from_static(b"meta"))).await.unwrap();
        tx.send(Ok(Bytes::from_static(b"-state"))).await.unwrap();
        drop(tx);
        let mut data = SnapshotData::live(rx);
        assert!(data.path().is_none());
        let mut all = Vec::new();
        data.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"meta-state");

        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(Bytes::from_static(b"half"))).await.unwrap();
        tx.send(Err(io::Error::other("scan failed"))).await.unwrap();
        let mut data = SnapshotData::live(rx);
        let err = data.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert_eq!(err.to_string(), "scan failed");

        let err = SnapshotData::unavailable()
            .read_to_end(&mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }
}
