//! A `Write` that hands its bytes to an async reader in bounded chunks. Snapshots are written
//! by blocking code (a scan of one storage view) and consumed by network tasks; the channel's
//! bound is what keeps a stream of any size in bounded memory, and a reader that falls behind
//! (or goes away) slows (or stops) the writer.

use bytes::Bytes;
use std::io::{self, Write};
use tokio::sync::mpsc;

/// What the reader receives: chunks, or the error that ended the stream early (so a stream
/// that failed half-way is never mistaken for a short one).
pub type Chunk = io::Result<Bytes>;

pub struct ChunkWriter {
    chunks: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
    chunk_bytes: usize,
}

impl ChunkWriter {
    /// A writer that hands over chunks of about `chunk_bytes`, at most `queued` ahead of the
    /// reader. Write from a blocking thread: a full queue blocks the writer.
    pub fn channel(chunk_bytes: usize, queued: usize) -> (ChunkWriter, mpsc::Receiver<Chunk>) {
        let (chunks, receiver) = mpsc::channel(queued.max(1));
        let writer = ChunkWriter {
            chunks,
            buf: Vec::with_capacity(chunk_bytes),
            chunk_bytes: chunk_bytes.max(1),
        };
        (writer, receiver)
    }

    /// Whether the reader dropped its end (nobody is left to tell of a failure).
    pub fn reader_gone(&self) -> bool {
        self.chunks.is_closed()
    }

    /// Ends the stream with `error`: the reader sees it after the chunks already handed over.
    pub fn fail(self, error: io::Error) {
        let _ = self.chunks.blocking_send(Err(error));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= self.chunk_bytes {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_bytes));
        self.chunks
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_arrive_in_order_and_a_failure_ends_the_stream() {
        let (mut writer, mut reader) = ChunkWriter::channel(4, 8);
        writer.write_all(b"abcdefghij").unwrap();
        writer.flush().unwrap();
        writer.fail(io::Error::other("disk gone"));
        let mut got = Vec::new();
        let mut failed = None;
        while let Some(chunk) = reader.blocking_recv() {
            match chunk {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(e) => failed = Some(e.to_string()),
            }
        }
        assert_eq!(got, b"abcdefghij");
        assert_eq!(failed.as_deref(), Some("disk gone"));
    }

    #[test]
    fn a_reader_that_went_away_stops_the_writer() {
        let (mut writer, reader) = ChunkWriter::channel(2, 1);
        drop(reader);
        assert!(writer.reader_gone());
        let err = writer.write_all(b"abcd").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
