//! Commands the state machine applies, and what each one did.
//!
//! A command carries the proposer's clock (`at_ms`) so that applying it gives the same result
//! on every replica and on every replay: expiry is decided by the command's time, never by
//! the clock of whoever applies it.

use hakv_api::{CanonicalJson, Revision};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Unix milliseconds when the command was ordered: stamped by the single node's writer
    /// path, or by the Raft leader that proposes it (whoever received it from the client). It
    /// takes effect at `max(at_ms, the state's clock)` (`state_machine.rs`, "The state's
    /// clock").
    pub at_ms: u64,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put {
        key: String,
        value: CanonicalJson,
        ttl_ms: Option<u64>,
        condition: Condition,
    },
    Delete {
        key: String,
        condition: Condition,
    },
    /// Removes an expired key, but only if it still holds `revision` (a newer write wins).
    Expire {
        key: String,
        revision: Revision,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } | Op::Expire { key, .. } => key,
        }
    }
}

/// A precondition on the key's current revision, checked in log order at apply time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    Always,
    /// `If-Match: "<rev>"`: the key exists with exactly this revision.
    Revision(Revision),
    /// `If-Match: *`: the key exists.
    Exists,
    /// `If-None-Match: *`: the key does not exist.
    Absent,
}

impl Condition {
    pub fn holds(self, current: Option<Revision>) -> bool {
        match self {
            Condition::Always => true,
            Condition::Revision(want) => current == Some(want),
            Condition::Exists => current.is_some(),
            Condition::Absent => current.is_none(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Written {
        revision: Revision,
        created: bool,
    },
    Deleted {
        revision: Revision,
    },
    NotFound,
    ConditionFailed {
        current: Option<Revision>,
    },
    /// An `Expire` found the key already gone or rewritten: nothing to do.
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_compare_against_the_current_revision() {
        let r = Some(Revision(5));
        assert!(Condition::Always.holds(None));
        assert!(Condition::Revision(Revision(5)).holds(r));
        assert!(!Condition::Revision(Revision(4)).holds(r));
        assert!(!Condition::Revision(Revision(5)).holds(None));
        assert!(Condition::Exists.holds(r) && !Condition::Exists.holds(None));
        assert!(Condition::Absent.holds(None) && !Condition::Absent.holds(r));
    }
}
