//! Group commit above Raft: proposals wait in a bounded queue, one task packs everything
//! waiting into one [`Batch`] (one log entry, so one fsync per node for all of them), hands it
//! to `client_write`, and answers each proposer with its own outcome.
//!
//! openraft 0.9 appends every `client_write` separately and awaits its fsync inline, so
//! concurrent entries cannot share fsyncs inside the log store; sharing an entry is the only
//! way. A few entries may be in flight at once: while one is replicating, the next forms.

use crate::batch::approx_bytes;
use crate::config::ProposerConfig;
use crate::leadership::{LeaderHint, Leadership, Standing};
use crate::{Batch, NodeId, Raft};
use hakv_store::{Command, Outcome};
use openraft::BasicNode;
use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Why a proposal got no outcome. Every variant but [`Unknown`](ProposeError::Unknown) means
/// the command was certainly not applied and will not be: retrying it is safe (at the leader
/// for `NotLeader`, later for the others). After `Unknown` the command may or may not be
/// applied, now or later; retry only commands that are idempotent or guarded by a condition
/// that makes a second application fail harmlessly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node does not lead; `leader` is the one it knows of, as (id, advertised address).
    /// Decided before the command reached Raft.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// The proposal queue is full: shed load. Nothing was queued.
    #[error("too many proposals waiting")]
    Overloaded,
    /// This node leads but no quorum acknowledged it within the longest election timeout (it
    /// may be in a minority partition). Decided before the command reached Raft.
    #[error("the leader has not heard from a quorum recently")]
    NoQuorum,
    /// The command reached Raft but no outcome came back: the node lost leadership or quorum
    /// after appending it, shut down meanwhile, or the wait timed out. It may be applied.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The node is shutting down and the command never left the queue.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// This leader is handing leadership over; the command was not queued. Send it to the
    /// next leader.
    #[error("this leader is handing leadership over")]
    HandingOver,
    /// This leader's disk is nearly full (below its reserve): the command was not queued.
    #[error("the leader's disk is nearly full")]
    DiskFull,
}

impl ProposeError {
    /// True when the command was certainly not applied, so sending it again cannot apply it
    /// twice.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ProposeError::Unknown(_))
    }

    fn from_standing(standing: Standing) -> Option<ProposeError> {
        match standing {
            Standing::Leader => None,
            Standing::NotLeader(leader) => Some(ProposeError::NotLeader { leader }),
            Standing::NoQuorum => Some(ProposeError::NoQuorum),
        }
    }
}

/// Refuses a proposal at once if this node cannot commit it now.
pub(crate) fn check_standing(leadership: &Leadership) -> Result<(), ProposeError> {
    ProposeError::from_standing(leadership.standing()).map_or(Ok(()), Err)
}

struct Proposal {
    command: Command,
    reply: oneshot::Sender<Result<Outcome, ProposeError>>,
}

/// What every batch write needs.
struct Writing {
    raft: Raft,
    leadership: Leadership,
    timeout: Duration,
    /// How often an in-flight write re-checks that the node still leads with a quorum.
    recheck: Duration,
    /// Set while leadership is handed over: batches not yet proposed are refused.
    paused: Arc<AtomicBool>,
    /// Batches past the pause check, until their outcome is known.
    proposing: AtomicUsize,
}

/// The proposers' side: the queue, and the task that drains it.
pub(crate) struct Proposer {
    queue: mpsc::Sender<Proposal>,
    writing: Arc<Writing>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Proposer {
    pub(crate) fn start(
        raft: Raft,
        leadership: Leadership,
        config: &ProposerConfig,
        heartbeat: Duration,
        paused: Arc<AtomicBool>,
    ) -> Proposer {
        let (queue, proposals) = mpsc::channel(config.queue_capacity.max(1));
        let (stop, stopped) = watch::channel(false);
        let writing = Arc::new(Writing {
            raft,
            leadership,
            timeout: config.timeout,
            recheck: heartbeat,
            paused,
            proposing: AtomicUsize::new(0),
        });
        let task = tokio::spawn(batch_loop(proposals, writing.clone(), config.clone(), stopped));
        Proposer {
            queue,
            writing,
            stop,
            task,
        }
    }

    /// True when no entry is being proposed. Once the pause flag is set and this is true,
    /// nothing more reaches the log from here: later batches see the flag and are refused.
    pub(crate) fn is_idle(&self) -> bool {
        self.writing.proposing.load(Ordering::SeqCst) == 0
    }

    pub(crate) fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    pub(crate) async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .try_send(Proposal { command, reply })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => ProposeError::ShuttingDown,
            })?;
        // Every queued proposal is answered; a dropped reply means a write task died after
        // taking it, when it may already have reached Raft.
        outcome.await.unwrap_or_else(|_| {
            Err(ProposeError::Unknown(
                "the proposer stopped without an answer".into(),
            ))
        })
    }

    /// Stops taking proposals (those still queued get `ShuttingDown`) and waits until the
    /// writes in flight have been answered, at most `grace`; Raft must be shut down next, which
    /// answers any write still waiting with `Unknown`; the task is returned if it has not
    /// finished yet.
    pub(crate) async fn stop(self, grace: Duration) -> Option<JoinHandle<()>> {
        let _ = self.stop.send(true);
        let mut task = self.task;
        match tokio::time::timeout(grace, &mut task).await {
            Ok(_) => None,
            // Still waiting on writes in flight: the caller awaits it after stopping Raft.
            Err(_) => Some(task),
        }
    }
}

async fn batch_loop(
    mut proposals: mpsc::Receiver<Proposal>,
    writing: Arc<Writing>,
    config: ProposerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let max_in_flight = config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let slots = Arc::new(Semaphore::new(max_in_flight as usize));
    loop {
        // Take a write slot before the first proposal: while every slot is busy, proposals
        // keep piling up in the queue and the next entry carries all of them.
        let slot = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let first = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            first = proposals.recv() => match first {
                Some(first) => first,
                None => break,
            },
        };
        let batch = gather(first, &mut proposals, &config).await;
        tokio::spawn(write_batch(writing.clone(), batch, slot));
    }
    proposals.close();
    while let Ok(proposal) = proposals.try_recv() {
        let _ = proposal.reply.send(Err(ProposeError::ShuttingDown));
    }
    // Return only once every write in flight has answered its proposers.
    let _ = slots.acquire_many(max_in_flight).await;
}

/// `first` plus whatever else is waiting, within the batch limits.
async fn gather(
    first: Proposal,
    proposals: &mut mpsc::Receiver<Proposal>,
    config: &ProposerConfig,
) -> Vec<Proposal> {
    // Proposers that are runnable right now (often on this very core) get two chances to
    // join, as in the store's group commit: a larger entry costs the same fsync.
    const YIELDS: u32 = 2;
    let mut bytes = approx_bytes(&first.command);
    let mut batch = vec![first];
    let mut yields = 0;
    while batch.len() < config.max_batch_commands && bytes < config.max_batch_bytes {
        match proposals.try_recv() {
            Ok(next) => {
                bytes += approx_bytes(&next.command);
                batch.push(next);
            }
            Err(mpsc::error::TryRecvError::Empty) if yields < YIELDS => {
                yields += 1;
                tokio::task::yield_now().await;
            }
            Err(_) => break,
        }
    }
    batch
}

async fn write_batch(writing: Arc<Writing>, batch: Vec<Proposal>, _slot: OwnedSemaphorePermit) {
    let (commands, replies): (Vec<Command>, Vec<_>) = batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    metrics::histogram!("hakv_raft_batch_commands").record(commands.len() as f64);
    let started = std::time::Instant::now();
    // Counted before the pause flag is read, and the handover sets the flag before it reads
    // the count (both SeqCst): either the handover waits for this batch, or the batch sees
    // the flag.
    writing.proposing.fetch_add(1, Ordering::SeqCst);
    let result = match check_standing(&writing.leadership) {
        // Leadership can change while a batch forms; refusing here is still before Raft.
        Err(refused) => Err(refused),
        Ok(()) if writing.paused.load(Ordering::SeqCst) => Err(ProposeError::HandingOver),
        Ok(()) => write(&writing, commands).await,
    };
    writing.proposing.fetch_sub(1, Ordering::SeqCst);
    metrics::histogram!("hakv_raft_proposal_duration_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

/// Proposes one entry and waits for its outcomes, giving up (with `Unknown`) on timeout or as
/// soon as this node stops leading with a quorum, so no proposer hangs in a minority.
async fn write(writing: &Writing, commands: Vec<Command>) -> Result<Vec<Outcome>, ProposeError> {
    let expected = commands.len();
    let written = writing.raft.client_write(Batch { commands });
    let lost = async {
        loop {
            tokio::time::sleep(writing.recheck).await;
            if writing.leadership.standing() != Standing::Leader {
                return;
            }
        }
    };
    let result = tokio::select! {
        result = written => result,
        _ = tokio::time::sleep(writing.timeout) => {
            return Err(ProposeError::Unknown(format!("not applied within {:?}", writing.timeout)));
        }
        _ = lost => {
            return Err(ProposeError::Unknown("lost leadership or quorum with the entry in flight".into()));
        }
    };
    match result {
        Ok(response) if response.data.len() == expected => Ok(response.data),
        Ok(response) => Err(ProposeError::Unknown(format!(
            "{} outcomes for {expected} commands",
            response.data.len()
        ))),
        Err(err) => Err(classify(err)),
    }
}

/// Every error of `client_write` is `Unknown`, including `ForwardToLeader`: openraft sends it
/// both when it refuses the entry (not leader) and when it truncates an entry it had already
/// appended as leader. A truncated entry may still sit on another node that later becomes
/// leader and commits it, so "not applied" cannot be promised. The refusal case is made rare
/// by checking the standing just before `client_write`.
fn classify(err: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> ProposeError {
    let hint: LeaderHint = match &err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => forward.leader_id.map(|id| {
            (
                id,
                forward
                    .leader_node
                    .as_ref()
                    .map(|n| n.addr.clone())
                    .unwrap_or_default(),
            )
        }),
        _ => None,
    };
    match hint {
        Some((id, addr)) => ProposeError::Unknown(format!("leadership moved to node {id} ({addr}): {err}")),
        None => ProposeError::Unknown(err.to_string()),
    }
}
