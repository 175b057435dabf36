//! Callers sharing rounds of one operation whose answer is good only for callers that arrived
//! before it started: a read index, confirmed by a quorum (on the leader) or asked of the
//! leader (on a follower). One round runs at a time and answers exactly the callers that
//! were waiting when it started; a caller that arrives while one runs waits for the next.
//! Joining a running round would be wrong: it may have started before the caller arrived,
//! and a write acknowledged in between would then be missing from the caller's read.
//!
//! So however many readers arrive, a member sends one request per round trip: many
//! followers' reads cost the leader one request per follower and round trip, not one per
//! read. (Up to four rounds in flight, to spare a caller that just missed one the wait for
//! its end, measured no faster: `bench/read-scaling.sh`, docs/benchmarks.md.)

use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Times a round yields before it starts: readers that are runnable right now (their requests
/// already read, often on this very core) get a chance to join it, since a round costs the
/// same however many readers it serves.
const GATHER_YIELDS: u32 = 2;

/// Rounds answering `T`; each caller brings an `I` (what the round should know of it, such as
/// its request id).
pub struct Rounds<I, T> {
    queue: Mutex<Queue<I, T>>,
}

struct Queue<I, T> {
    /// A task is running rounds.
    running: bool,
    /// Callers that arrived after the running round started: the next round answers them.
    next: Vec<(I, oneshot::Sender<T>)>,
}

impl<I, T> Default for Rounds<I, T> {
    fn default() -> Self {
        Rounds {
            queue: Mutex::new(Queue {
                running: false,
                next: Vec::new(),
            }),
        }
    }
}

impl<I: Send + 'static, T: Clone + Send + 'static> Rounds<I, T> {
    /// The answer of the first round that starts after this call; that round is given `item`
    /// with those of every other caller it answers. `round` runs one round; it is used only
    /// when no rounds are running (else the running task's own `round` serves), on a task of
    /// its own so that a caller that gives up cancels nobody else's round.
    /// `None`: the task running the rounds ended without answering (the runtime is going down).
    pub async fn join<F, Fut>(self: &Arc<Self>, item: I, round: F) -> Option<T>
    where
        F: FnMut(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (waiter, answer) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().expect("rounds lock");
            queue.next.push((item, waiter));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(self.clone().run(round));
        }
        answer.await.ok()
    }

    /// Runs rounds until no caller is waiting.
    async fn run<F, Fut>(self: Arc<Self>, mut round: F)
    where
        F: FnMut(Vec<I>) -> Fut,
        Fut: Future<Output = T>,
    {
        loop {
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
            }
            let (items, waiters): (Vec<I>, Vec<_>) = {
                let mut queue = self.queue.lock().expect("rounds lock");
                if queue.next.is_empty() {
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.next).into_iter().unzip()
            };
            let answer = round(items).await;
            for waiter in waiters {
                let _ = waiter.send(answer.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::sync::Notify;

    /// A caller that arrives while a round runs is answered by a later round, never by the
    /// running one; callers that arrive together share one round, which is given all their
    /// items.
    #[tokio::test]
    async fn a_caller_is_answered_only_by_a_round_that_started_after_it_arrived() {
        let rounds = Arc::new(Rounds::<u32, (u64, Vec<u32>)>::default());
        let started = Arc::new(AtomicU64::new(0));
        let release = Arc::new(Notify::new());
        let round = {
            let (started, release) = (started.clone(), release.clone());
            move |mut callers: Vec<u32>| {
                let (started, release) = (started.clone(), release.clone());
                async move {
                    let number = started.fetch_add(1, Ordering::SeqCst) + 1;
                    release.notified().await;
                    callers.sort();
                    (number, callers)
                }
            }
        };
        let first = tokio::spawn({
            let (rounds, round) = (rounds.clone(), round.clone());
            async move { rounds.join(0, round).await }
        });
        while started.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // Round 1 is running: these two arrive during it.
        let late: Vec<_> = (1..=2)
            .map(|caller| {
                let (rounds, round) = (rounds.clone(), round.clone());
                tokio::spawn(async move { rounds.join(caller, round).await })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "no second round while one runs"
        );
        release.notify_one();
        assert_eq!(first.await.unwrap(), Some((1, vec![0])));
        while started.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        for caller in late {
            assert_eq!(
                caller.await.unwrap(),
                Some((2, vec![1, 2])),
                "both late callers share round 2"
            );
        }
        assert_eq!(started.load(Ordering::SeqCst), 2);
    }

    /// A caller that gives up does not stop the round that others wait for.
    #[tokio::test]
    async fn a_caller_that_gives_up_cancels_nobody_elses_round() {
        let rounds = Arc::new(Rounds::<(), u64>::default());
        let release = Arc::new(Notify::new());
        let round = {
            let release = release.clone();
            move |_callers| {
                let release = release.clone();
                async move {
                    release.notified().await;
                    7
                }
            }
        };
        let quitter = tokio::spawn({
            let (rounds, round) = (rounds.clone(), round.clone());
            async move { rounds.join((), round).await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        quitter.abort();
        let waiter = tokio::spawn({
            let rounds = rounds.clone();
            async move { rounds.join((), round).await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        release.notify_one(); // ends the quitter's round; the waiter needs the next one
        release.notify_one();
        assert_eq!(waiter.await.unwrap(), Some(7));
    }
}
