//! Errors of the storage layer, split into "this call failed" and "this store is broken".

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine met a full disk (ENOSPC). Writes are normally refused before this happens
    /// (`DiskSpace`); when it does happen in a commit, the batch's outcome is unknown.
    #[error("the disk is full")]
    DiskFull,
    /// The engine failed; after a failed write the store refuses further writes (fjall poisons
    /// itself), so callers should treat the node as broken.
    #[error("storage engine error: {0}")]
    Engine(#[from] fjall::Error),
    /// Bytes on disk did not decode: a bug or corruption, never the client's fault.
    #[error("corrupt record for key {key:?}: {reason}")]
    Corrupt { key: String, reason: &'static str },
    /// A snapshot is being installed (or its install was interrupted): the state is not
    /// readable until it completes. Retryable; the member reports itself not ready.
    #[error("a snapshot is being installed; try again shortly")]
    Installing,
    /// The writer has stopped (shutdown or an earlier fatal error).
    #[error("the store is closed")]
    Closed,
    /// Another process has the store open (fjall locks its directory).
    #[error("another process holds this data directory open (is another hakv serve running on it?)")]
    Locked,
}

impl StoreError {
    /// Classifies an engine error, so a full disk can be reported as such (HTTP 507).
    pub(crate) fn from_engine(err: fjall::Error) -> StoreError {
        if let fjall::Error::Io(io) = &err
            && io.kind() == io::ErrorKind::StorageFull
        {
            return StoreError::DiskFull;
        }
        if matches!(err, fjall::Error::Locked) {
            return StoreError::Locked;
        }
        StoreError::Engine(err)
    }
}
