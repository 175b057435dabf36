//! The recorder client threads share: each request is an `Operation` with invoke and completion
//! times from one monotonic clock, so the checker can tell which requests overlapped.

use crate::op::{Op, OpResult};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Names one recorded operation: its index in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpId(pub usize);

/// One request as a client saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: OpId,
    /// Whoever issued it; only used in reports (a client may have many requests in flight).
    pub client: u64,
    pub key: String,
    pub op: Op,
    /// Nanoseconds since the history's start, taken before the request was sent.
    pub invoke_ns: u64,
    /// Nanoseconds since the start, taken after the answer arrived; `None` while pending.
    pub complete_ns: Option<u64>,
    /// `Unknown` while pending: a request that never completes may still have been applied.
    pub result: OpResult,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        write!(
            f,
            "#{} client {} {} -> {} [{:.3} ms .. ",
            self.id.0,
            self.client,
            self.op,
            self.result,
            ms(self.invoke_ns)
        )?;
        match (self.complete_ns, &self.result) {
            // An unknown outcome may take effect at any time after invoke, whenever it answered.
            (_, OpResult::Unknown) | (None, _) => write!(f, "?]"),
            (Some(done), _) => write!(f, "{:.3} ms]", ms(done)),
        }
    }
}

/// A thread-safe record of every client's requests. Share it by reference (or in an `Arc`)
/// between client threads: `invoke` right before sending, `complete` right after the answer.
///
/// ```
/// use hakv_testkit::{History, Op, OpResult};
/// let history = History::new();
/// let id = history.invoke(1, "k", Op::Put { value: 7.into() });
/// history.complete(id, OpResult::Ok { revision: 1 });
/// assert!(hakv_testkit::check(&history).is_linearizable());
/// ```
#[derive(Debug)]
pub struct History {
    start: Instant,
    operations: Mutex<Vec<Operation>>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    pub fn new() -> History {
        History {
            start: Instant::now(),
            operations: Mutex::new(Vec::new()),
        }
    }

    /// Builds a history from saved operations (e.g. read back from JSON); their ids are
    /// renumbered to their positions.
    pub fn from_operations(operations: Vec<Operation>) -> History {
        let operations = operations
            .into_iter()
            .enumerate()
            .map(|(i, op)| Operation { id: OpId(i), ..op })
            .collect();
        History {
            start: Instant::now(),
            operations: Mutex::new(operations),
        }
    }

    /// Nanoseconds since the history started, on the clock `invoke` and `complete` use.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records that `client` is about to send `op` on `key`; call it before sending.
    pub fn invoke(&self, client: u64, key: impl Into<String>, op: Op) -> OpId {
        let key = key.into();
        let mut operations = self.lock();
        // Read the clock under the lock so ids are in invoke order too (easier reports).
        let invoke_ns = self.now_ns();
        let id = OpId(operations.len());
        operations.push(Operation {
            id,
            client,
            key,
            op,
            invoke_ns,
            complete_ns: None,
            result: OpResult::Unknown,
        });
        id
    }

    /// Records the answer to `id`; call it after the answer arrived (or the request timed out,
    /// with `OpResult::Unknown`).
    ///
    /// # Panics
    /// If `id` was not invoked on this history or was already completed: a bug in the test.
    pub fn complete(&self, id: OpId, result: OpResult) {
        let complete_ns = self.now_ns();
        let mut operations = self.lock();
        let operation = operations
            .get_mut(id.0)
            .unwrap_or_else(|| panic!("operation #{} was never invoked on this history", id.0));
        assert!(
            operation.complete_ns.is_none(),
            "operation {operation} was completed twice"
        );
        operation.complete_ns = Some(complete_ns);
        operation.result = result;
    }

    /// Adds a finished operation with explicit times, for hand-written histories.
    ///
    /// # Panics
    /// If `complete_ns < invoke_ns`.
    pub fn record(
        &self,
        client: u64,
        key: impl Into<String>,
        op: Op,
        invoke_ns: u64,
        complete_ns: u64,
        result: OpResult,
    ) -> OpId {
        assert!(
            invoke_ns <= complete_ns,
            "an operation cannot complete before its invoke"
        );
        let mut operations = self.lock();
        let id = OpId(operations.len());
        operations.push(Operation {
            id,
            client,
            key: key.into(),
            op,
            invoke_ns,
            complete_ns: Some(complete_ns),
            result,
        });
        id
    }

    /// A copy of everything recorded so far, in id order (e.g. to save it as JSON).
    pub fn operations(&self) -> Vec<Operation> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A client thread that panicked mid-record must not hide everyone else's history.
    fn lock(&self) -> MutexGuard<'_, Vec<Operation>> {
        self.operations.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
