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

use crate::memo::{Bitset, Memo};
use crate::model::{Action, State, step};
use std::collections::HashMap;

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

/// Searches for a linearization of `ops` from `initial`, taking at most `budget` steps
/// (a step is one look at an event: an attempt to place an operation, or a backtrack).
///
/// Among the operations that could go next, those with a known outcome are tried first and
/// those of unknown outcome only when none of the former leads on: an unknown write is
/// usually needed only to explain a later observation, and trying it early would explore
/// many orders no observation asks for.
pub(crate) fn search(ops: &[KeyOp], initial: State, budget: u64) -> SearchOutcome {
    let mut events = Events::new(ops);
    // Known and unknown operations are numbered apart: the memo treats them differently.
    let mut slots = (0, 0);
    let slot: Vec<usize> = ops
        .iter()
        .map(|op| {
            let counter = if op.complete_ns.is_none() {
                &mut slots.1
            } else {
                &mut slots.0
            };
            *counter += 1;
            *counter - 1
        })
        .collect();
    let is_open = |op: usize| ops[op].complete_ns.is_none();
    let (mut known, mut unknown) = (Bitset::new(slots.0), Bitset::new(slots.1));
    let flip = |op: usize, known: &mut Bitset, unknown: &mut Bitset| {
        if is_open(op) {
            unknown.flip(slot[op])
        } else {
            known.flip(slot[op])
        }
    };
    let mut interchangeable = Interchangeable::new(ops);
    let mut memo = Memo::default();
    let mut state = initial;
    let mut placed: Vec<(usize, State)> = Vec::new();
    let mut deepest = deepest_now(&events, &placed, state);
    let mut steps = 0u64;
    let mut trying_unknown = false;
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
            if is_open(op) == trying_unknown
                && (!trying_unknown || interchangeable.is_next(op))
                && let Some(next_state) = step(state, ops[op].action)
            {
                flip(op, &mut known, &mut unknown);
                if memo.visit(&known, &unknown, next_state) {
                    interchangeable.place(op);
                    placed.push((node, state));
                    state = next_state;
                    events.lift(node);
                    if placed.len() > deepest.prefix.len() {
                        deepest = deepest_now(&events, &placed, state);
                    }
                    trying_unknown = false;
                    node = events.next[HEAD];
                    continue;
                }
                flip(op, &mut known, &mut unknown);
            }
            node = events.next[node];
        } else if events.open_ended[node] {
            return finish(Verdict::Linearizable, steps);
        } else if !trying_unknown {
            trying_unknown = true;
            node = events.next[HEAD];
        } else {
            let Some((call, before)) = placed.pop() else {
                return finish(Verdict::NotLinearizable(deepest), steps);
            };
            let op = events.op[call];
            flip(op, &mut known, &mut unknown);
            interchangeable.unplace(op);
            state = before;
            events.unlift(call);
            trying_unknown = is_open(op);
            node = events.next[call];
        }
    }
}

/// Unknown-outcome operations with equal actions (e.g. blind writes of values no read
/// returned) are interchangeable: whichever is placed, the same states follow, and an earlier
/// invoked one can stand in for a later one (neither has a deadline). So only the earliest
/// unplaced one of each class is a candidate, which keeps the classes' placed members a
/// prefix in invoke order.
struct Interchangeable {
    /// Per open-ended operation: (class, rank in the class by invoke order).
    member: Vec<Option<(usize, usize)>>,
    placed: Vec<usize>,
}

impl Interchangeable {
    fn new(ops: &[KeyOp]) -> Interchangeable {
        let mut by_invoke: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].complete_ns.is_none()).collect();
        by_invoke.sort_by_key(|&i| (ops[i].invoke_ns, i));
        let mut classes: HashMap<Action, (usize, usize)> = HashMap::new();
        let mut member = vec![None; ops.len()];
        for i in by_invoke {
            let next_class = classes.len();
            let (class, size) = classes.entry(ops[i].action).or_insert((next_class, 0));
            member[i] = Some((*class, *size));
            *size += 1;
        }
        Interchangeable {
            member,
            placed: vec![0; classes.len()],
        }
    }

    fn is_next(&self, op: usize) -> bool {
        self.member[op].is_none_or(|(class, rank)| self.placed[class] == rank)
    }

    fn place(&mut self, op: usize) {
        if let Some((class, _)) = self.member[op] {
            self.placed[class] += 1;
        }
    }

    fn unplace(&mut self, op: usize) {
        if let Some((class, _)) = self.member[op] {
            self.placed[class] -= 1;
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
