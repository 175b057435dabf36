//! `check`: splits a history by key (linearizability is compositional, so each key's register
//! is checked alone), searches each key, and cross-checks revisions between keys.

use crate::history::{History, Operation};
use crate::model::{State, Values};
use crate::op::{Op, OpResult};
use crate::report::{CheckReport, Explanation, KeyReport, Outcome, RevisionConflict};
use crate::search::{Deepest, KeyOp, Verdict, search};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Limits of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Search steps per key before giving up with [`Outcome::BudgetExceeded`]. The memo keeps
    /// about one entry per step, so this also bounds memory (roughly 100 bytes per entry).
    pub step_budget_per_key: u64,
}

impl CheckOptions {
    /// Measured in `tests/scale.rs`, with 8 clients always in flight and ~11% unknown
    /// outcomes: ~300 operations on one key take 5k-140k steps (under a second in a debug
    /// build); ~1500 on one key can exceed it.
    pub const DEFAULT_STEP_BUDGET_PER_KEY: u64 = 2_000_000;
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            step_budget_per_key: Self::DEFAULT_STEP_BUDGET_PER_KEY,
        }
    }
}

/// Checks every key of `history` with the default budget.
pub fn check(history: &History) -> CheckReport {
    check_with(history, &CheckOptions::default())
}

pub fn check_with(history: &History, options: &CheckOptions) -> CheckReport {
    check_operations(&history.operations(), options)
}

/// Checks saved operations (e.g. a history read back from JSON). Operations that never
/// completed count as unknown.
pub fn check_operations(operations: &[Operation], options: &CheckOptions) -> CheckReport {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in operations {
        by_key.entry(&operation.key).or_default().push(operation);
    }
    let keys: Vec<(&str, Vec<&Operation>)> = by_key.into_iter().collect();
    CheckReport {
        keys: in_parallel(&keys, |(key, ops)| check_key(key, ops, options)),
        revision_conflicts: revision_conflicts(operations),
    }
}

fn check_key(key: &str, operations: &[&Operation], options: &CheckOptions) -> KeyReport {
    let mut values = Values::for_key(operations.iter().map(|o| (&o.op, result_of(o))));
    let mut included: Vec<&Operation> = Vec::new();
    let mut ops: Vec<KeyOp> = Vec::new();
    for &operation in operations {
        let Some(action) = values.action(&operation.op, result_of(operation)) else {
            continue;
        };
        included.push(operation);
        ops.push(KeyOp {
            action,
            invoke_ns: operation.invoke_ns,
            complete_ns: if action.is_open_ended() {
                None
            } else {
                operation.complete_ns
            },
        });
    }
    let found = search(&ops, State::INITIAL, options.step_budget_per_key);
    let outcome = match found.verdict {
        Verdict::Linearizable => Outcome::Linearizable,
        Verdict::BudgetExceeded => Outcome::BudgetExceeded {
            budget: options.step_budget_per_key,
        },
        Verdict::NotLinearizable(deepest) => {
            Outcome::NotLinearizable(Box::new(explain(&deepest, &included, &values)))
        }
    };
    KeyReport {
        key: key.to_owned(),
        checked: included.len(),
        ignored: operations.len() - included.len(),
        steps: found.steps,
        outcome,
    }
}

/// A request that never completed may still have been applied: its result is unknown.
fn result_of(operation: &Operation) -> &OpResult {
    match operation.complete_ns {
        Some(_) => &operation.result,
        None => &OpResult::Unknown,
    }
}

fn explain(deepest: &Deepest, included: &[&Operation], values: &Values) -> Explanation {
    let operation = |i: &usize| included[*i].clone();
    Explanation {
        prefix: deepest.prefix.iter().map(operation).collect(),
        state_after_prefix: values.describe(deepest.state),
        pending: deepest.pending.iter().map(operation).collect(),
        blocker: operation(&deepest.blocker),
    }
}

/// Revisions number single changes cluster-wide, so a revision seen on two keys (as a write's
/// result, a read's `ETag` or a 412's current revision) is a bug no per-key check can see.
fn revision_conflicts(operations: &[Operation]) -> Vec<RevisionConflict> {
    // revision -> position of the first operation claiming it
    let mut owner: HashMap<u64, usize> = HashMap::new();
    let mut conflicts: BTreeMap<u64, RevisionConflict> = BTreeMap::new();
    for (position, operation) in operations.iter().enumerate() {
        let Some(revision) = claimed_revision(operation) else {
            continue;
        };
        let first = &operations[*owner.entry(revision).or_insert(position)];
        if first.key != operation.key {
            conflicts.entry(revision).or_insert_with(|| RevisionConflict {
                revision,
                first: first.clone(),
                second: operation.clone(),
            });
        }
    }
    conflicts.into_values().collect()
}

fn claimed_revision(operation: &Operation) -> Option<u64> {
    operation.complete_ns?;
    match (&operation.op, &operation.result) {
        (Op::Get, OpResult::Found { revision, .. }) => Some(*revision),
        (Op::Get, _) => None,
        (_, OpResult::Ok { revision }) => Some(*revision),
        (Op::PutIf { .. } | Op::Delete { .. }, OpResult::PreconditionFailed { current }) => *current,
        _ => None,
    }
}

/// Runs `f` on every item on all cores (keys are independent); results in item order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = f(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}
