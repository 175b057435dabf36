//! Group commit: one writer thread drains every proposal waiting in a bounded queue, applies
//! them as one fsynced batch, and then answers each proposer. Concurrent writers therefore
//! share fsyncs, and revisions and conditions are decided in one total order.

use crate::answers::{Answer, Answers, Reply};
use crate::state_machine::Change;
use crate::{Command, Outcome, StateMachine, StoreError};
use hakv_api::Revision;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Observes applied batches from the writer thread; the server's cache hangs here, which is
/// how the cache stays coherent with the state machine.
pub trait ApplyHook: Send + Sync + 'static {
    /// Runs before the batch becomes visible to readers; `revision` is its highest revision.
    fn before_visible(&self, changes: &[Change], revision: Revision);
    /// Runs after the batch is durable and visible, before any proposer hears back.
    fn after_visible(&self, changes: &[Change]);
    /// Runs just before the whole state is replaced (a Raft snapshot install), with the new
    /// state's revision: a cache must drop every entry and refuse fills read before it.
    fn reset(&self, _revision: Revision) {}
}

/// An [`ApplyHook`] that does nothing.
pub struct NoHook;

impl ApplyHook for NoHook {
    fn before_visible(&self, _: &[Change], _: Revision) {}
    fn after_visible(&self, _: &[Change]) {}
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Proposals waiting for the writer; beyond this, proposals are refused (load shedding).
    pub queue_capacity: usize,
    /// Most commands applied in one batch (one fsync).
    pub max_batch: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 4096,
            max_batch: 1024,
        }
    }
}

/// Why a proposal got no outcome.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// The write queue is full: shed load, the client may retry later. Nothing was applied.
    #[error("the write queue is full")]
    QueueFull,
    /// The store refused the batch before writing anything (it failed earlier, or a stored
    /// record did not decode): nothing was applied.
    #[error("storage failure: {0}")]
    Refused(String),
    /// Committing failed while the batch was being written (a full disk included): part or
    /// all of it may be on disk, and a restart can replay it. The store takes no more writes
    /// (fjall poisons itself), and the node reports itself not ready.
    #[error("storage failure while committing (the write may have been applied): {0}")]
    Unknown(String),
    /// The writer is gone (shutting down, or broken by an earlier failure).
    #[error("the store is closed")]
    Closed,
}

impl From<&StoreError> for ProposeError {
    fn from(err: &StoreError) -> Self {
        match err {
            StoreError::Closed => ProposeError::Closed,
            StoreError::Engine(fjall::Error::Poisoned) | StoreError::Corrupt { .. } => {
                ProposeError::Refused(err.to_string())
            }
            other => ProposeError::Unknown(other.to_string()),
        }
    }
}

/// How often the writer yields its core to proposers before committing a batch.
const YIELDS_BEFORE_COMMIT: u32 = 2;

struct Proposal {
    command: Command,
    reply: Reply,
}

/// The handle proposers use; cheap to clone. Dropping every handle stops the writer thread
/// once the queue is drained.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Proposal>,
    healthy: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer thread over `state_machine`.
    pub fn start(
        state_machine: Arc<StateMachine>,
        hook: Arc<dyn ApplyHook>,
        config: WriterConfig,
    ) -> (Writer, JoinHandle<()>) {
        let (queue, proposals) = mpsc::channel(config.queue_capacity.max(1));
        let healthy = Arc::new(AtomicBool::new(true));
        let thread_healthy = healthy.clone();
        let answers = Answers::start();
        let thread = std::thread::Builder::new()
            .name("hakv-writer".into())
            .spawn(move || {
                write_loop(
                    &state_machine,
                    hook.as_ref(),
                    proposals,
                    &answers,
                    config.max_batch.max(1),
                    &thread_healthy,
                )
            })
            .expect("spawning the writer thread");
        (Writer { queue, healthy }, thread)
    }

    /// Applies `command` durably and returns what it did. A dropped future does not cancel
    /// the command: once queued, it is applied (the caller's outcome is then unknown).
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .try_send(Proposal { command, reply })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => ProposeError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => ProposeError::Closed,
            })?;
        outcome.await.unwrap_or(Err(ProposeError::Closed))
    }

    /// False once a commit has failed (the engine then refuses every later write).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Proposals waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

fn write_loop(
    state_machine: &StateMachine,
    hook: &dyn ApplyHook,
    mut proposals: mpsc::Receiver<Proposal>,
    answers: &Answers,
    max_batch: usize,
    healthy: &AtomicBool,
) {
    let mut commands = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    while let Some(first) = proposals.blocking_recv() {
        commands.push(first.command);
        replies.push(first.reply);
        // Before committing, give proposers that are runnable right now (on a busy machine,
        // often on this very core) a chance to join the batch: one fsync then carries more.
        let mut yields = 0;
        while commands.len() < max_batch {
            match proposals.try_recv() {
                Ok(next) => {
                    commands.push(next.command);
                    replies.push(next.reply);
                }
                Err(_) if yields < YIELDS_BEFORE_COMMIT => {
                    yields += 1;
                    std::thread::yield_now();
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = state_machine.apply_batch(&commands, |changes, revision| {
            hook.before_visible(changes, revision)
        });
        metrics::histogram!("hakv_storage_commit_duration_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("hakv_storage_batch_commands").record(commands.len() as f64);
        match result {
            Ok((outcomes, changes)) => {
                hook.after_visible(&changes);
                answers.send(replies.drain(..).zip(outcomes.into_iter().map(Ok)).collect());
            }
            Err(err) => {
                tracing::error!(error = %err, commands = commands.len(), "commit failed; the store takes no more writes");
                metrics::counter!("hakv_storage_commit_failures_total").increment(1);
                healthy.store(false, Ordering::Relaxed);
                // The cache saw the batch before the commit: forget it all.
                hook.reset(state_machine.revision());
                let failed: Vec<Answer> = replies
                    .drain(..)
                    .map(|reply| (reply, Err(ProposeError::from(&err))))
                    .collect();
                answers.send(failed);
            }
        }
        commands.clear();
    }
    if let Err(err) = state_machine.persist() {
        tracing::error!(error = %err, "final flush of the store failed");
    }
}
