//! Answering proposers: a committed batch's outcomes reach the proposers' runtime as one
//! message, and a task there completes every proposer's future.
//!
//! Why not complete each proposer from the writer thread: every completion from outside the
//! runtime may unpark a worker, and on a busy core the woken worker preempts the writer, serves
//! that one answer, parks again, and is woken by the next completion. Measured with 32
//! closed-loop writers on one core (`bench/ab-serve.sh`): 1.3–1.5 context switches per write,
//! over 40 per fsync batch. One message per batch wakes the runtime once (0.15 per write).

use crate::{Outcome, ProposeError};
use tokio::sync::{mpsc, oneshot};

pub(crate) type Reply = oneshot::Sender<Result<Outcome, ProposeError>>;
pub(crate) type Answer = (Reply, Result<Outcome, ProposeError>);

/// Batches of answers waiting for the runtime's task before the writer waits for it: the
/// writer commits ahead of the answers by at most this many batches.
const BATCHES_IN_FLIGHT: usize = 16;

pub(crate) struct Answers {
    /// None when the writer was started outside a Tokio runtime: it then completes each
    /// proposer itself.
    to_runtime: Option<mpsc::Sender<Vec<Answer>>>,
}

impl Answers {
    /// Spawns the answering task on the current Tokio runtime, if there is one.
    pub(crate) fn start() -> Answers {
        let to_runtime = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (to_runtime, mut batches) = mpsc::channel::<Vec<Answer>>(BATCHES_IN_FLIGHT);
            runtime.spawn(async move {
                while let Some(batch) = batches.recv().await {
                    complete(batch);
                }
            });
            to_runtime
        });
        Answers { to_runtime }
    }

    /// Completes every proposer of `batch`. Called from the writer thread, never from a task.
    pub(crate) fn send(&self, batch: Vec<Answer>) {
        match &self.to_runtime {
            // The runtime is gone (shutting down): answer from here.
            Some(to_runtime) => {
                if let Err(mpsc::error::SendError(batch)) = to_runtime.blocking_send(batch) {
                    complete(batch);
                }
            }
            None => complete(batch),
        }
    }
}

fn complete(batch: Vec<Answer>) {
    for (reply, outcome) in batch {
        // A proposer that stopped waiting no longer needs its outcome.
        let _ = reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposer() -> (Reply, oneshot::Receiver<Result<Outcome, ProposeError>>) {
        oneshot::channel()
    }

    #[test]
    fn outside_a_runtime_the_writer_answers_each_proposer_itself() {
        let answers = Answers::start();
        assert!(answers.to_runtime.is_none());
        let (reply, outcome) = proposer();
        answers.send(vec![(reply, Ok(Outcome::NotFound))]);
        assert!(matches!(outcome.blocking_recv(), Ok(Ok(Outcome::NotFound))));
    }

    #[test]
    fn a_batch_reaches_every_proposer_through_the_runtime() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let answers = runtime.block_on(async { Answers::start() });
        assert!(answers.to_runtime.is_some());
        let (batch, outcomes): (Vec<_>, Vec<_>) = (0..3).map(|_| proposer()).unzip();
        let batch = batch
            .into_iter()
            .map(|reply| (reply, Ok(Outcome::Unchanged)))
            .collect();
        std::thread::spawn(move || answers.send(batch)).join().unwrap();
        for outcome in outcomes {
            assert!(matches!(outcome.blocking_recv(), Ok(Ok(Outcome::Unchanged))));
        }
    }

    #[test]
    fn once_the_runtime_is_gone_the_writer_answers_itself() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let answers = runtime.block_on(async { Answers::start() });
        drop(runtime);
        let (reply, outcome) = proposer();
        answers.send(vec![(reply, Err(ProposeError::Closed))]);
        assert!(matches!(outcome.blocking_recv(), Ok(Err(ProposeError::Closed))));
    }
}
