//! Errors of the Raft storage layer, and their conversion into openraft's `StorageError`
//! (which openraft treats as fatal: the node stops rather than risk diverging).

use crate::{LogId, StorageError};
use openraft::{ErrorSubject, ErrorVerb, StorageIOError};

#[derive(Debug, thiserror::Error)]
pub enum RaftStoreError {
    /// The Raft log's fjall database failed.
    #[error("raft log engine error: {0}")]
    Engine(#[from] fjall::Error),
    /// The state machine failed.
    #[error("state machine error: {0}")]
    Store(#[from] hakv_store::StoreError),
    /// A file of the snapshot store could not be read or written.
    #[error("snapshot file error: {0}")]
    Io(#[from] std::io::Error),
    /// Bytes on disk did not decode: a bug or corruption.
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: &'static str, reason: String },
    /// A blocking storage task panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
}

impl RaftStoreError {
    pub(crate) fn corrupt(what: &'static str, reason: impl ToString) -> RaftStoreError {
        RaftStoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }

    /// Wraps this error for openraft, saying what was being done to what.
    pub(crate) fn into_storage(self, subject: ErrorSubject<crate::NodeId>, verb: ErrorVerb) -> StorageError {
        StorageIOError::new(subject, verb, &self).into()
    }

    pub(crate) fn reading_logs(self) -> StorageError {
        self.into_storage(ErrorSubject::Logs, ErrorVerb::Read)
    }

    pub(crate) fn writing_logs(self) -> StorageError {
        self.into_storage(ErrorSubject::Logs, ErrorVerb::Write)
    }

    pub(crate) fn applying(self, last: LogId) -> StorageError {
        self.into_storage(ErrorSubject::Apply(last), ErrorVerb::Write)
    }
}

/// Runs blocking storage work (fsyncs, whole-state scans) off the async workers, so a slow
/// disk does not stall the network tasks that share them.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, RaftStoreError>
where
    F: FnOnce() -> Result<T, RaftStoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RaftStoreError::Task(e.to_string()))?
}
