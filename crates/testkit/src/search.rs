//! The search for a linearization of one key's operations: Wing & Gong's backtracking with
//! Lowe's "just-in-time" order and a memo of explored (linearized set, state) pairs, bounded
//! by a step budget.
//!
//! Call and return events sit in one time-ordered doubly linked list. Walking it from the
//! front, a call whose operation can take effect in the current state is linearized: its call
//! and return are unlinked and the walk restarts. Reaching a return means that operation had
//! to take effect before this point and did not, so the last choice is undone. Operations of
//! unknown outcome return at +infinity: reaching such a return means every operation with a
//! known completion is placed, and the unplaced rest are taken as never applied.

use crate::model::{Action, State, step};
use std::collections::HashSet;

/// One operation of the key, in the search's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyOp {
    pub action: Action,
    pub invoke_ns: u64,
    /// `None` for an unknown outcome: it may take effect at any time after invoke, or never.
    pub complete_ns: Option<u64>,
}

/// The furthest the search got: the basis of the explanation of a failure.
#[derive(Debug, Clone)]
pub(crate) struct Deepest {
    /// Indices of the operations of the longest linearizable prefix found, in order.
    pub prefix: Vec<usize>,
    pub state: State,
    /// Operations that had been invoked but not placed at that point.
    pub pending: Vec<usize>,
    /// The first operation that completed without a place: the search's dead end.
    pub blocker: usize,
}

#[derive(Debug)]
pub(crate) enum Verdict {
    Linearizable,
    NotLinearizable(Deepest),
    BudgetExceeded,
}

#[derive(Debug)]
pub(crate) struct SearchOutcome {
    pub verdict: Verdict,
    pub steps: u64,
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// The events list: node 0 is a sentinel head, then one call and one return per operation.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// For a call node, its return node.
    partner: Vec<usize>,
    /// Return nodes of open-ended operations (returning at +infinity).
    open_ended: Vec<bool>,
}

impl Events {
    fn new(ops: &[KeyOp]) -> Events {
        // (time, calls before returns at equal times so touching intervals count as
        // overlapping, operation, is_call)
        let mut order = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke_ns, 0u8, i));
            order.push((op.complete_ns.unwrap_or(u64::MAX), 1u8, i));
        }
        order.sort_unstable();
        let nodes = order.len() + 1;
        let mut events = Events {
            next: (1..=nodes).map(|i| if i == nodes { NIL } else { i }).collect(),
            prev: (0..nodes).map(|i| i.wrapping_sub(1)).collect(),
            op: vec![NIL; nodes],
            is_call: vec![false; nodes],
            partner: vec![NIL; nodes],
            open_ended: vec![false; nodes],
        };
        let mut call_node = vec![NIL; ops.len()];
        for (position, &(_, kind, i)) in order.iter().enumerate() {
            let node = position + 1;
            events.op[node] = i;
            if kind == 0 {
                events.is_call[node] = true;
                call_node[i] = node;
            } else {
                events.partner[call_node[i]] = node;
                events.open_ended[node] = ops[i].complete_ns.is_none();
            }
        }
        events
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    /// Undoes `unlink(node)`; valid because undos happen in reverse order (dancing links).
    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.partner[call]);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.partner[call]);
        self.relink(call);
    }

    /// The operations invoked before the first remaining return, and that return's operation.
    fn frontier(&self) -> (Vec<usize>, usize) {
        let mut pending = Vec::new();
        let mut node = self.next[HEAD];
        while node != NIL && self.is_call[node] {
            pending.push(self.op[node]);
            node = self.next[node];
        }
        let blocker = if node == NIL { NIL } else { self.op[node] };
        (pending, blocker)
    }
}

/// Which operations are linearized, as a bitset: half of the memo's key.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Linearized(Box<[u64]>);

impl Linearized {
    fn new(len: usize) -> Linearized {
        Linearized(vec![0; len.div_ceil(64)].into_boxed_slice())
    }

    fn flip(&mut self, i: usize) {
        self.0[i / 64] ^= 1 << (i % 64);
    }
}

/// Searches for a linearization of `ops` from `initial`, taking at most `budget` steps
/// (a step is one attempt to place an operation or one backtrack).
pub(crate) fn search(ops: &[KeyOp], initial: State, budget: u64) -> SearchOutcome {
    let mut events = Events::new(ops);
    let mut state = initial;
    let mut linearized = Linearized::new(ops.len());
    // Reaching a (linearized set, state) pair again cannot lead anywhere new: the remaining
    // operations and the register are the same as the first time.
    let mut explored: HashSet<(Linearized, State)> = HashSet::new();
    let mut placed: Vec<(usize, State)> = Vec::new();
    let mut deepest = deepest_now(&events, &placed, state);
    let mut steps = 0u64;
    let mut node = events.next[HEAD];
    loop {
        if node == NIL {
            return finish(Verdict::Linearizable, steps);
        }
        steps += 1;
        if steps > budget {
            return finish(Verdict::BudgetExceeded, steps - 1);
        }
        if events.is_call[node] {
            let op = events.op[node];
            if let Some(next_state) = step(state, ops[op].action) {
                linearized.flip(op);
                if explored.insert((linearized.clone(), next_state)) {
                    placed.push((node, state));
                    state = next_state;
                    events.lift(node);
                    if placed.len() > deepest.prefix.len() {
                        deepest = deepest_now(&events, &placed, state);
                    }
                    node = events.next[HEAD];
                    continue;
                }
                linearized.flip(op);
            }
            node = events.next[node];
        } else if events.open_ended[node] {
            return finish(Verdict::Linearizable, steps);
        } else {
            let Some((call, before)) = placed.pop() else {
                return finish(Verdict::NotLinearizable(deepest), steps);
            };
            linearized.flip(events.op[call]);
            state = before;
            events.unlift(call);
            node = events.next[call];
        }
    }
}

fn finish(verdict: Verdict, steps: u64) -> SearchOutcome {
    SearchOutcome { verdict, steps }
}

fn deepest_now(events: &Events, placed: &[(usize, State)], state: State) -> Deepest {
    let (pending, blocker) = events.frontier();
    Deepest {
        prefix: placed.iter().map(|&(call, _)| events.op[call]).collect(),
        state,
        pending,
        blocker,
    }
}
