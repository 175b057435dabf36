//! The sequential specification of one key: a register holding nothing or (value, revision),
//! where every change gets a larger revision. `step` says whether an operation with its
//! observed result can happen next in a state, and what state follows.

use crate::op::{Condition, DeleteCondition, Op, OpResult};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A value of one key, interned so states are small, `Copy` and hashable.
pub(crate) type ValueId = u32;

/// What is known about the revision of the key's last change. Writes whose outcome is unknown
/// do not tell us their revision, only that it is larger than the one before; a later read or
/// failed precondition may pin it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Revision {
    Exactly(u64),
    AtLeast(u64),
}

impl Revision {
    fn lower_bound(self) -> u64 {
        match self {
            Revision::Exactly(r) | Revision::AtLeast(r) => r,
        }
    }

    /// The revision narrowed to `observed`, if it can be that.
    fn pin(self, observed: u64) -> Option<Revision> {
        match self {
            Revision::Exactly(r) => (r == observed).then_some(self),
            Revision::AtLeast(r) => (observed >= r).then_some(Revision::Exactly(observed)),
        }
    }

    /// Whether a change with revision `next` can follow: revisions only grow.
    fn can_precede(self, next: u64) -> bool {
        next > self.lower_bound()
    }

    /// The revision after a change whose number was not observed.
    fn unseen_successor(self) -> Revision {
        Revision::AtLeast(self.lower_bound().saturating_add(1))
    }
}

/// The register: the current value (`None`: absent) and the revision of its last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct State {
    pub value: Option<ValueId>,
    pub revision: Revision,
}

impl State {
    /// A key the test never wrote before: absent, and any revision may come next.
    pub const INITIAL: State = State {
        value: None,
        revision: Revision::AtLeast(0),
    };
}

/// The precondition of a write, the same for puts and deletes (as in the store's `decide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Guard {
    Always,
    Revision(u64),
    Exists,
    Absent,
}

impl Guard {
    /// The state refined so that the guard holds in it, or `None` if it cannot hold.
    fn refine_holding(self, state: State) -> Option<State> {
        match self {
            Guard::Always => Some(state),
            Guard::Exists => state.value.is_some().then_some(state),
            Guard::Absent => state.value.is_none().then_some(state),
            Guard::Revision(want) => {
                state.value?;
                let revision = state.revision.pin(want)?;
                Some(State { revision, ..state })
            }
        }
    }

    /// The state refined so that the guard fails and the key's revision is `current`
    /// (`None`: absent), as a 412 reports it; `None` if that cannot be.
    fn refine_failing(self, state: State, current: Option<u64>) -> Option<State> {
        let Some(current) = current else {
            let holds_when_absent = matches!(self, Guard::Always | Guard::Absent);
            return (state.value.is_none() && !holds_when_absent).then_some(state);
        };
        state.value?;
        let revision = state.revision.pin(current)?;
        let fails = match self {
            Guard::Always | Guard::Exists => false,
            Guard::Absent => true,
            Guard::Revision(want) => want != current,
        };
        fails.then_some(State { revision, ..state })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Effect {
    Put(ValueId),
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WriteOutcome {
    /// Applied as the change with this revision; `None`: outcome unknown, so if it is
    /// linearized at all it was applied (leaving it out covers "never applied").
    Applied(Option<u64>),
    NotFound,
    PreconditionFailed(Option<u64>),
}

/// An operation with its result, in the model's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    /// A read that saw `(value, revision)`, or no key.
    Read(Option<(ValueId, u64)>),
    Write {
        effect: Effect,
        guard: Guard,
        outcome: WriteOutcome,
    },
    /// A result the operation can never have (e.g. a get answered "ok"): never linearizable.
    Impossible,
}

impl Action {
    /// Whether the operation may be linearized after its completion time (unknown outcome).
    pub fn is_open_ended(self) -> bool {
        matches!(
            self,
            Action::Write {
                outcome: WriteOutcome::Applied(None),
                ..
            }
        )
    }
}

/// The value of unknown writes whose value no read could have returned: they are all alike,
/// which lets the search treat them as interchangeable.
const UNSEEN: ValueId = ValueId::MAX;

/// Distinct values of one key, so states compare values by a small id.
#[derive(Debug, Default)]
pub(crate) struct Values {
    ids: HashMap<String, ValueId>,
    values: Vec<Value>,
    /// Values some read returned with a revision no acknowledged write of this key has: only
    /// those can come from a write of unknown outcome. (A read of revision `r` where an
    /// acknowledged write got `r` saw that write: revisions name single changes.)
    seen_from_unknown: HashSet<String>,
}

impl Values {
    /// Prepares for the operations (with results) of one key.
    pub fn for_key<'a>(operations: impl Iterator<Item = (&'a Op, &'a OpResult)> + Clone) -> Values {
        let acknowledged: HashSet<u64> = operations
            .clone()
            .filter_map(|(op, result)| match (op, result) {
                (Op::Get, _) => None,
                (_, OpResult::Ok { revision }) => Some(*revision),
                _ => None,
            })
            .collect();
        let seen_from_unknown = operations
            .filter_map(|(op, result)| match (op, result) {
                (Op::Get, OpResult::Found { value, revision }) if !acknowledged.contains(revision) => {
                    Some(value.to_string())
                }
                _ => None,
            })
            .collect();
        Values {
            seen_from_unknown,
            ..Values::default()
        }
    }

    /// Like `intern`, for the value of a write whose outcome is unknown.
    fn intern_unknown(&mut self, value: &Value) -> ValueId {
        if self.seen_from_unknown.contains(&value.to_string()) {
            self.intern(value)
        } else {
            UNSEEN
        }
    }

    fn intern(&mut self, value: &Value) -> ValueId {
        // serde_json's maps are sorted, so equal values have equal text.
        let text = value.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = ValueId::try_from(self.values.len()).expect("fewer than 2^32 distinct values per key");
        self.ids.insert(text, id);
        self.values.push(value.clone());
        id
    }

    /// Translates an operation and its result; `None` when it cannot have had an effect and
    /// tells nothing (a failed request, a read whose answer never came), so it is left out.
    pub fn action(&mut self, op: &Op, result: &OpResult) -> Option<Action> {
        if *result == OpResult::Failed {
            return None;
        }
        let value_id = |values: &mut Values, value: &Value| match result {
            OpResult::Unknown => values.intern_unknown(value),
            _ => values.intern(value),
        };
        let (effect, guard) = match op {
            Op::Get => {
                return match result {
                    OpResult::Found { value, revision } => {
                        Some(Action::Read(Some((self.intern(value), *revision))))
                    }
                    OpResult::NotFound => Some(Action::Read(None)),
                    OpResult::Unknown => None,
                    _ => Some(Action::Impossible),
                };
            }
            Op::Put { value } => (Effect::Put(value_id(self, value)), Guard::Always),
            Op::PutIf { value, condition } => {
                let guard = match *condition {
                    Condition::Revision(r) => Guard::Revision(r),
                    Condition::Exists => Guard::Exists,
                    Condition::Absent => Guard::Absent,
                };
                (Effect::Put(value_id(self, value)), guard)
            }
            Op::Delete { condition } => {
                let guard = match *condition {
                    DeleteCondition::Always => Guard::Always,
                    DeleteCondition::Revision(r) => Guard::Revision(r),
                    DeleteCondition::Exists => Guard::Exists,
                };
                (Effect::Delete, guard)
            }
        };
        let outcome = match result {
            OpResult::Ok { revision } => WriteOutcome::Applied(Some(*revision)),
            OpResult::Unknown => WriteOutcome::Applied(None),
            OpResult::NotFound => WriteOutcome::NotFound,
            OpResult::PreconditionFailed { current } => WriteOutcome::PreconditionFailed(*current),
            OpResult::Found { .. } | OpResult::Failed => return Some(Action::Impossible),
        };
        Some(Action::Write {
            effect,
            guard,
            outcome,
        })
    }

    /// The state for people: `absent`, `7 @12`, `7 @>=12` (revision not yet observed).
    pub fn describe(&self, state: State) -> String {
        let revision = match state.revision {
            Revision::Exactly(r) => format!("@{r}"),
            Revision::AtLeast(0) => "(no revision seen)".to_owned(),
            Revision::AtLeast(r) => format!("@>={r}"),
        };
        match state.value {
            Some(UNSEEN) => format!("(a value no read returned) {revision}"),
            Some(id) => format!("{} {revision}", self.values[id as usize]),
            None => format!("absent, last change {revision}"),
        }
    }
}

/// The state after `action` if it can take effect in `state`, else `None`.
pub(crate) fn step(state: State, action: Action) -> Option<State> {
    match action {
        Action::Read(Some((value, revision))) => {
            if state.value != Some(value) {
                return None;
            }
            let revision = state.revision.pin(revision)?;
            Some(State { revision, ..state })
        }
        Action::Read(None) => state.value.is_none().then_some(state),
        Action::Write {
            effect,
            guard,
            outcome,
        } => match outcome {
            WriteOutcome::Applied(revision) => {
                let state = guard.refine_holding(state)?;
                // Deleting an absent key answers "not found" and changes nothing.
                if effect == Effect::Delete && state.value.is_none() {
                    return None;
                }
                let revision = match revision {
                    Some(r) => state.revision.can_precede(r).then_some(Revision::Exactly(r))?,
                    None => state.revision.unseen_successor(),
                };
                let value = match effect {
                    Effect::Put(value) => Some(value),
                    Effect::Delete => None,
                };
                Some(State { value, revision })
            }
            // The store checks the guard first, then whether there is anything to delete.
            WriteOutcome::NotFound => {
                if effect != Effect::Delete {
                    return None;
                }
                let state = guard.refine_holding(state)?;
                state.value.is_none().then_some(state)
            }
            WriteOutcome::PreconditionFailed(current) => guard.refine_failing(state, current),
        },
        Action::Impossible => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(value: ValueId, revision: Revision) -> State {
        State {
            value: Some(value),
            revision,
        }
    }

    #[test]
    fn an_unseen_revision_is_pinned_by_the_first_observation() {
        let state = present(0, Revision::AtLeast(5));
        assert_eq!(
            step(state, Action::Read(Some((0, 7)))),
            Some(present(0, Revision::Exactly(7)))
        );
        assert_eq!(step(state, Action::Read(Some((0, 4)))), None);
        assert_eq!(step(state, Action::Read(Some((1, 7)))), None);
    }

    #[test]
    fn writes_need_a_larger_revision_than_the_last_change() {
        let put = |revision| Action::Write {
            effect: Effect::Put(1),
            guard: Guard::Always,
            outcome: WriteOutcome::Applied(Some(revision)),
        };
        let state = present(0, Revision::Exactly(5));
        assert_eq!(step(state, put(5)), None);
        assert_eq!(step(state, put(6)), Some(present(1, Revision::Exactly(6))));
    }

    #[test]
    fn failed_preconditions_must_really_fail_and_report_the_current_revision() {
        let cas = |want, current| Action::Write {
            effect: Effect::Put(1),
            guard: Guard::Revision(want),
            outcome: WriteOutcome::PreconditionFailed(current),
        };
        let state = present(0, Revision::Exactly(5));
        assert_eq!(step(state, cas(4, Some(5))), Some(state));
        assert_eq!(step(state, cas(5, Some(5))), None, "the condition held");
        assert_eq!(step(state, cas(4, Some(6))), None, "wrong current revision");
        assert_eq!(step(state, cas(4, None)), None, "the key exists");
        assert_eq!(step(State::INITIAL, cas(4, None)), Some(State::INITIAL));
    }

    #[test]
    fn deletes_follow_the_stores_order_of_checks() {
        let delete = |guard, outcome| Action::Write {
            effect: Effect::Delete,
            guard,
            outcome,
        };
        let absent = State::INITIAL;
        assert_eq!(
            step(absent, delete(Guard::Always, WriteOutcome::NotFound)),
            Some(absent)
        );
        assert_eq!(step(absent, delete(Guard::Exists, WriteOutcome::NotFound)), None);
        assert_eq!(
            step(
                absent,
                delete(Guard::Exists, WriteOutcome::PreconditionFailed(None))
            ),
            Some(absent)
        );
        assert_eq!(
            step(absent, delete(Guard::Always, WriteOutcome::Applied(None))),
            None
        );
    }
}
