//! A linearizability checker for histories recorded by hakv's clients in fault tests.
//!
//! # Use
//!
//! Client threads share one [`History`]. Each request is recorded with
//! [`History::invoke`] right before it is sent and [`History::complete`] right after its
//! answer (or its timeout); [`OpResult::from_http`] turns hakv's answer into a result.
//! Afterwards [`check`] decides whether every key's history could have come from a single
//! copy of the data changing atomically at some instant inside each request:
//!
//! ```
//! use hakv_testkit::{History, Op, OpResult, check};
//! use serde_json::json;
//!
//! let history = History::new();
//! let put = history.invoke(1, "k", Op::Put { value: json!("a") });
//! let get = history.invoke(2, "k", Op::Get); // concurrent with the put
//! history.complete(get, OpResult::NotFound); // fine: the put had not happened yet
//! history.complete(put, OpResult::Ok { revision: 4 });
//! let get = history.invoke(2, "k", Op::Get);
//! history.complete(get, OpResult::NotFound); // stale: the put completed before this read
//! let report = check(&history);
//! assert!(report.has_violation());
//! println!("{report}"); // which key, the longest linearizable prefix, the dead end
//! ```
//!
//! The result is a [`CheckReport`]: [`CheckReport::is_linearizable`] for "proven correct",
//! [`CheckReport::has_violation`] for "proven wrong"; a key whose search ran out of its
//! step budget ([`CheckOptions`]) is neither. Its `Display` lists every key that is not
//! proven linearizable with an explanation. Histories serialize with serde
//! ([`History::operations`], [`History::from_operations`], [`check_operations`]) so a
//! failing one can be saved and checked again.
//!
//! # The model: one register per key
//!
//! A key holds nothing or `(value, revision)`. Every change (write or delete) gets a
//! cluster-wide revision larger than every earlier one, so on one key revisions grow in the
//! order of its changes. For one operation with its result:
//! - a read `Found { value, revision }` needs exactly that value and revision, `NotFound`
//!   an absent key;
//! - a write `Ok { revision }` needs its condition to hold (`If-Match` revision / exists,
//!   `If-None-Match: *` absent) and `revision` larger than the last change's; a delete also
//!   needs the key to exist (otherwise hakv answers `NotFound`, checked after the condition);
//! - `PreconditionFailed { current }` needs the condition to fail with the key at `current`
//!   (`None`: absent);
//! - `Failed` requests had no effect and are left out; so are reads with no answer;
//! - `Unknown` writes may take effect at any instant after their invoke (even after the test
//!   ended) or never. Their revision is unknown until a read or a 412 reveals it.
//!
//! Keys start absent: record every write to a key, or use fresh keys. TTLs and stale reads
//! are outside the model. Two keys claiming the same revision are reported too.
//!
//! # The algorithm
//!
//! Linearizability is compositional, so each key is checked alone (on all cores). Per key,
//! the search is Wing & Gong's backtracking in Lowe's just-in-time form with a memo of
//! explored (set of placed operations, register state) pairs, as in Porcupine and Knossos;
//! see `search.rs`. Operations of unknown outcome are what makes it hard (each may be placed
//! anywhere later, or nowhere), so they are tried only when nothing known fits, the memo lets
//! fewer placed unknowns dominate more, and unknown writes of values no read returned are
//! interchangeable (`memo.rs`, `search.rs`).
//!
//! # Limits
//!
//! The search is worst-case exponential; each key has a step budget (default 2 million,
//! [`CheckOptions`]) so a check always ends, with [`Outcome::BudgetExceeded`] rather than a
//! verdict when it runs out. Measured with 8 clients always in flight and about 11% unknown
//! outcomes: 1600 operations on 5 keys need at most ~5k steps per key, 300 on one key up to
//! ~140k; 1500+ on one key can exceed the budget. So spread a fault test's load over several
//! keys (hundreds of operations each), or raise the budget.
//!
//! Record each HTTP attempt as its own operation: a client or balancer that retries writes
//! out of the test's sight can produce answers no single attempt explains (see
//! [`OpResult::from_http`]).

mod check;
mod history;
mod http;
mod memo;
mod model;
mod op;
mod report;
mod search;

pub use check::{CheckOptions, check, check_operations, check_with};
pub use history::{History, OpId, Operation};
pub use http::HttpAnswerError;
pub use op::{Condition, DeleteCondition, Op, OpResult};
pub use report::{CheckReport, Explanation, KeyReport, Outcome, RevisionConflict};
