//! Random requests as a fault-test client makes them (reads, blind writes, If-Match
//! increments from the last revision seen, creates and deletes) and random fates for them.

use hakv_testkit::{Condition, DeleteCondition, Op, OpResult};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::HashMap;

/// What happens to one request on its way, as in a cluster under faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Answered,
    /// Refused before it could be applied (503 overloaded).
    Refused,
    /// Timed out and never applied.
    Lost,
    /// Applied, but the answer was lost.
    AppliedUnanswered,
    /// Timed out, and applied later, after the client recorded the timeout.
    AppliedLate,
}

pub struct Workload {
    pub rng: StdRng,
    client: u64,
    keys: usize,
    sequence: u64,
    /// The last revision this client saw per key, for If-Match.
    seen: HashMap<String, u64>,
}

impl Workload {
    pub fn new(seed: u64, client: u64, keys: usize) -> Workload {
        Workload {
            rng: StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(client)),
            client,
            keys,
            sequence: 0,
            seen: HashMap::new(),
        }
    }

    pub fn next_op(&mut self) -> (String, Op) {
        let key = format!("key-{}", self.rng.random_range(0..self.keys));
        self.sequence += 1;
        // Mostly unique values, sometimes a shared one: equal values must not confuse anything.
        let value = if self.rng.random_bool(0.2) {
            json!(self.rng.random_range(0..3))
        } else {
            json!({"client": self.client, "seq": self.sequence})
        };
        let seen = self.seen.get(&key).copied().unwrap_or(1);
        let op = match self.rng.random_range(0..100) {
            0..40 => Op::Get,
            40..60 => Op::Put { value },
            60..78 => Op::PutIf {
                value,
                condition: Condition::Revision(seen),
            },
            78..84 => Op::PutIf {
                value,
                condition: Condition::Absent,
            },
            84..88 => Op::PutIf {
                value,
                condition: Condition::Exists,
            },
            88..94 => Op::Delete {
                condition: DeleteCondition::Always,
            },
            _ => Op::Delete {
                condition: DeleteCondition::Revision(seen),
            },
        };
        (key, op)
    }

    pub fn fate(&mut self) -> Fate {
        match self.rng.random_range(0..100) {
            0..4 => Fate::Refused,
            4..8 => Fate::Lost,
            8..12 => Fate::AppliedUnanswered,
            12..15 => Fate::AppliedLate,
            _ => Fate::Answered,
        }
    }

    /// Remembers revisions from answers, as a client doing read-modify-write would.
    pub fn observe(&mut self, key: &str, result: &OpResult) {
        let revision = match result {
            OpResult::Found { revision, .. } | OpResult::Ok { revision } => Some(*revision),
            OpResult::PreconditionFailed { current } => *current,
            _ => None,
        };
        if let Some(revision) = revision {
            self.seen.insert(key.to_owned(), revision);
        }
    }
}
