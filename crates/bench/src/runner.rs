//! Runs one phase of load: a task per connection pulls tickets from a shared schedule, and the
//! phase ends at the deadline, when the schedule runs out, or on interrupt, whichever is first.

use crate::connection::{Connection, ErrorKind};
use crate::report::{PhaseResult, StopReason, format_micros};
use crate::tally::{Finished, Tally};
use crate::target::Target;
use crate::workload::{Op, Workload};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio::time::{MissedTickBehavior, interval_at, sleep, sleep_until};

/// Tokio's timer has 1 ms granularity and only ever wakes late; open-loop tasks aim this much
/// early so the timer does not add its own lateness to every measured latency.
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Closed loop: pause after a failed connect, so a down target costs one attempt per connection
/// per pause instead of a busy loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// Tallies at most; connections share them round robin. Each holds three histograms of about
/// 190 KiB; 16 shards keep the locks uncontended with up to 16 worker threads.
const MAX_TALLIES: usize = 16;

/// Where each connection's next request comes from.
pub enum Schedule {
    /// Write keys 0..keys once each.
    Prefill { keys: u64 },
    /// Each connection sends its next request as soon as the previous one is answered.
    Closed { cap: Option<u64>, workload: Workload },
    /// Request `i` is due at `start + i / rate`, whoever sends it.
    Open {
        rate: f64,
        slots: u64,
        workload: Workload,
    },
}

/// One request to make, and when it should have been sent (open loop).
struct Ticket {
    op: Op,
    intended: Option<Instant>,
}

/// Live numbers, emitted about once per second.
#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: &'static str,
    pub elapsed: Duration,
    /// Requests finished during the last interval, per second.
    pub recent_qps: f64,
    pub requests: u64,
    pub failed: u64,
    pub p99_us: Option<u64>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p99 = self.p99_us.map_or("-".into(), format_micros);
        write!(
            f,
            "[{} {:>4.0}s] {:>9.0} req/s  total {:>10}  p99 {:>8}  errors {}",
            self.phase,
            self.elapsed.as_secs_f64(),
            self.recent_qps,
            self.requests,
            p99,
            self.failed
        )
    }
}

/// Everything the connection tasks of one phase share.
pub struct Phase {
    pub name: &'static str,
    pub schedule: Schedule,
    pub target: Arc<Target>,
    pub connections: usize,
    pub timeout: Duration,
    pub seed: u64,
    /// Hard end of the phase.
    pub limit: Duration,
}

struct Shared {
    phase: Phase,
    next: AtomicU64,
    start: Instant,
    tallies: Vec<Mutex<Tally>>,
}

fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    // A panicking connection task cannot leave a Tally half-updated in a harmful way.
    tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn ticket(&self, rng: &mut SmallRng) -> Option<Ticket> {
        match &self.phase.schedule {
            Schedule::Prefill { keys } => {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                (i < *keys).then_some(Ticket {
                    op: Op::Write(i),
                    intended: None,
                })
            }
            Schedule::Closed { cap, workload } => {
                if let Some(cap) = cap
                    && self.next.fetch_add(1, Ordering::Relaxed) >= *cap
                {
                    return None;
                }
                Some(Ticket {
                    op: workload.next(rng),
                    intended: None,
                })
            }
            Schedule::Open {
                rate,
                slots,
                workload,
            } => {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                (i < *slots).then(|| Ticket {
                    op: workload.next(rng),
                    intended: Some(self.start + Duration::from_secs_f64(i as f64 / rate)),
                })
            }
        }
    }

    /// Open loop: requests due before `elapsed` that no connection picked up.
    fn unsent(&self, elapsed: Duration) -> Option<u64> {
        match &self.phase.schedule {
            Schedule::Open { rate, slots, .. } => {
                let due = ((elapsed.as_secs_f64() * rate).ceil() as u64).min(*slots);
                let handed_out = self.next.load(Ordering::Relaxed).min(*slots);
                Some(due.saturating_sub(handed_out))
            }
            _ => None,
        }
    }

    fn merged(&self) -> Tally {
        let mut total = Tally::new(self.max_seconds());
        for tally in &self.tallies {
            total.merge(&lock(tally));
        }
        total
    }

    fn max_seconds(&self) -> usize {
        self.phase.limit.as_secs() as usize + 2
    }
}

/// One connection: take a ticket, wait for its time (open loop), send, record, repeat.
async fn drive(shared: Arc<Shared>, index: usize, mut connection: Connection) {
    let seed = shared.phase.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64;
    let mut rng = SmallRng::seed_from_u64(seed);
    let tally = &shared.tallies[index % shared.tallies.len()];
    let closed_loop = !matches!(shared.phase.schedule, Schedule::Open { .. });
    while let Some(ticket) = shared.ticket(&mut rng) {
        if let Some(wake) = ticket.intended.and_then(|t| t.checked_sub(TIMER_SLACK))
            && wake > Instant::now()
        {
            sleep_until(wake.into()).await;
        }
        let request = shared.phase.target.request(ticket.op);
        let sent = Instant::now();
        // Coordinated-omission correction: a late request is timed from when it was due; one
        // sent a little early (timer slack) from when it was actually sent.
        let from = ticket.intended.map_or(sent, |due| due.min(sent));
        let result = connection
            .exchange(&shared.phase.target, request, shared.phase.timeout)
            .await;
        let done = Instant::now();
        let connect_failed = matches!(result, Err(ErrorKind::Connect | ErrorKind::ConnectTimeout));
        lock(tally).record(Finished {
            is_write: matches!(ticket.op, Op::Write(_)),
            result: result.map(|status| status.as_u16()),
            latency: done - from,
            at: done - shared.start,
        });
        if connect_failed && closed_loop {
            sleep(RECONNECT_BACKOFF).await;
        }
    }
}

/// Runs `phase` to its end and returns what it measured. `stop` resolving ends it early.
pub async fn run_phase<F: Future<Output = ()>>(
    phase: Phase,
    mut stop: Pin<&mut F>,
    progress: &mut dyn FnMut(&Progress),
) -> PhaseResult {
    let connections = phase.connections;
    // Every connection is opened before the clock starts. Opened by the first requests, a
    // slow start (64 connects, a process still faulting in its memory) made the requests due
    // meanwhile late, and an open-loop run charged them the wait: up to 70 ms at the p99 of a
    // 5 s window, with every request answered within 7 ms on the wire.
    let mut opening = JoinSet::new();
    for _ in 0..connections {
        let (target, timeout) = (phase.target.clone(), phase.timeout);
        opening.spawn(async move { Connection::open(&target, timeout).await });
    }
    let opened: Vec<Connection> = tokio::select! {
        opened = opening.join_all() => opened,
        // Interrupted while connecting (a target that does not answer takes the timeout).
        _ = stop.as_mut() => return empty_result(StopReason::Interrupted),
    };
    // The tallies too, and their memory touched: allocated after the clock started, they once
    // held up the first requests by 70-100 ms (the same kind of late start as above).
    let max_seconds = phase.limit.as_secs() as usize + 2;
    let tallies: Vec<Mutex<Tally>> = (0..connections.min(MAX_TALLIES))
        .map(|_| Mutex::new(Tally::new(max_seconds).touched()))
        .collect();
    let start = Instant::now();
    let deadline = start + phase.limit;
    let shared = Arc::new(Shared {
        phase,
        next: AtomicU64::new(0),
        start,
        tallies,
    });
    let mut tasks = JoinSet::new();
    for (index, connection) in opened.into_iter().enumerate() {
        tasks.spawn(drive(shared.clone(), index, connection));
    }
    let second = Duration::from_secs(1);
    let mut ticker = interval_at((start + second).into(), second);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let end = sleep_until(deadline.into());
    tokio::pin!(end);
    let mut last_requests = 0;
    let mut last_tick = start;
    let stopped_by = loop {
        tokio::select! {
            _ = stop.as_mut() => break StopReason::Interrupted,
            _ = &mut end => break StopReason::Duration,
            joined = tasks.join_next() => if joined.is_none() { break StopReason::Requests },
            _ = ticker.tick() => {
                let now = Instant::now();
                // Merging every connection's histograms takes milliseconds; on the runtime's
                // thread it held up every connection once a second (requests due meanwhile went
                // out late, and an open-loop run charged them the wait). Merged on a blocking
                // thread, only this task waits for it.
                let merging = shared.clone();
                let Ok(tally) = tokio::task::spawn_blocking(move || merging.merged()).await else {
                    continue;
                };
                let interval = (now - last_tick).as_secs_f64();
                progress(&Progress {
                    phase: shared.phase.name,
                    elapsed: now - start,
                    recent_qps: (tally.total() - last_requests) as f64 / interval.max(1e-9),
                    requests: tally.total(),
                    failed: tally.failed,
                    p99_us: (!tally.latency_us.is_empty()).then(|| tally.latency_us.value_at_quantile(0.99)),
                });
                last_requests = tally.total();
                last_tick = now;
            }
        }
    };
    let elapsed = start.elapsed();
    // In-flight requests at the end are abandoned and not counted, as wrk does.
    tasks.shutdown().await;
    PhaseResult {
        tally: shared.merged(),
        elapsed,
        stopped_by,
        unsent: shared.unsent(elapsed),
    }
}

/// A phase that never ran.
pub fn empty_result(stopped_by: StopReason) -> PhaseResult {
    PhaseResult {
        tally: Tally::new(1),
        elapsed: Duration::ZERO,
        stopped_by,
        unsent: None,
    }
}
