//! Forwarded writes, batched: a follower sends the leader one request carrying every write
//! that arrived while its previous requests were in flight, so the hop costs one HTTP
//! exchange (on both members) per batch instead of per write. At low load a batch is one
//! write and goes out at once; under load, batches grow by themselves, the way the leader's
//! own proposer groups commands into log entries. Each write's request id goes with it, so
//! the leader's log names the client request a failure belongs to.

use super::forward::{ForwardError, Forwarder};
use crate::ApiError;
use crate::limits::current_request_id;
use hakv_store::{Command, Op, Outcome};
use http::HeaderValue;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The leader's answer to one forwarded write, or why there was none.
pub type ForwardResult = Result<Result<Outcome, ApiError>, ForwardError>;

/// Most writes in one forwarded request.
pub const MAX_BATCH_COMMANDS: usize = 1024;
/// A batch stops growing once its keys and values add up to this much (one larger write
/// still goes, alone).
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Forwarded requests in flight at once; writes arriving meanwhile form the next batch.
const MAX_IN_FLIGHT: usize = 3;
/// See `run`.
const GATHER_YIELDS: u32 = 2;
/// Writes waiting for a batch; beyond this a write is refused (503) instead of queued.
const QUEUE_CAPACITY: usize = 4096;

struct Pending {
    leader: String,
    command: Command,
    request_id: Option<HeaderValue>,
    reply: oneshot::Sender<ForwardResult>,
}

pub struct ForwardQueue {
    tx: mpsc::Sender<Pending>,
}

impl ForwardQueue {
    /// Starts the batching task; it ends when the queue is dropped.
    pub fn start(forwarder: Forwarder) -> ForwardQueue {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(rx, Arc::new(forwarder)));
        ForwardQueue { tx }
    }

    /// Writes waiting to be sent.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Sends `command` to the leader at `leader` in the next batch and waits for its answer.
    pub async fn propose(&self, leader: &str, command: Command) -> ForwardResult {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            leader: leader.to_owned(),
            command,
            request_id: current_request_id(),
            reply,
        };
        if self.tx.try_send(pending).is_err() {
            // Never sent, so refusing is safe and final.
            return Ok(Err(ApiError::Overloaded("writes waiting to be forwarded")));
        }
        // A dropped sender means the batch task died with the write possibly sent.
        answer
            .await
            .unwrap_or_else(|_| Err(ForwardError::Unknown("the forwarding task stopped".into())))
    }
}

/// What a command adds to a batch's size, roughly (its JSON adds a little more).
fn weight(command: &Command) -> usize {
    match &command.op {
        Op::Put { key, value, .. } => key.len() + value.as_bytes().len(),
        Op::Delete { key, .. } | Op::Expire { key, .. } => key.len(),
    }
}

async fn run(mut rx: mpsc::Receiver<Pending>, forwarder: Arc<Forwarder>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // A write for another leader than the batch being formed starts the next batch.
    let mut carried: Option<Pending> = None;
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let first = match carried.take() {
            Some(pending) => pending,
            None => match rx.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let mut bytes = weight(&first.command);
        let mut batch = vec![first];
        let mut yields = 0;
        while batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
            let next = match rx.try_recv() {
                Ok(next) => next,
                // Writers that are runnable right now (often on this very core) get two
                // chances to join, as in the proposer: a fuller batch costs the same exchange.
                Err(mpsc::error::TryRecvError::Empty) if yields < GATHER_YIELDS => {
                    yields += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(_) => break,
            };
            if next.leader != batch[0].leader {
                carried = Some(next);
                break;
            }
            bytes += weight(&next.command);
            batch.push(next);
        }
        let forwarder = forwarder.clone();
        tokio::spawn(async move {
            send(&forwarder, batch).await;
            drop(slot);
        });
    }
}

async fn send(forwarder: &Forwarder, batch: Vec<Pending>) {
    metrics::counter!("hakv_cluster_forward_batches_total").increment(1);
    let commands: Vec<&Command> = batch.iter().map(|p| &p.command).collect();
    let request_ids: Vec<Option<&HeaderValue>> = batch.iter().map(|p| p.request_id.as_ref()).collect();
    match forwarder
        .propose_batch(&batch[0].leader, &commands, &request_ids)
        .await
    {
        Ok(answers) if answers.len() == batch.len() => {
            for (pending, answer) in batch.into_iter().zip(answers) {
                let _ = pending.reply.send(Ok(answer.into_result()));
            }
        }
        Ok(answers) => {
            let why = format!("the leader answered {} of {} writes", answers.len(), batch.len());
            for pending in batch {
                let _ = pending.reply.send(Err(ForwardError::Unknown(why.clone())));
            }
        }
        Err(err) => {
            for pending in batch {
                let _ = pending.reply.send(Err(err.clone()));
            }
        }
    }
}
