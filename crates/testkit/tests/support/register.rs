//! A sequential in-memory hakv: every request applied atomically under one lock, with one
//! revision counter for all keys, following the store's order of checks.

use hakv_testkit::{Condition, DeleteCondition, Op, OpResult};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Register {
    keys: HashMap<String, (Value, u64)>,
    last_revision: u64,
}

impl Register {
    pub fn apply(&mut self, key: &str, op: &Op) -> OpResult {
        let current = self.keys.get(key).map(|(_, revision)| *revision);
        match op {
            Op::Get => match self.keys.get(key) {
                Some((value, revision)) => OpResult::Found {
                    value: value.clone(),
                    revision: *revision,
                },
                None => OpResult::NotFound,
            },
            Op::Put { value } => self.change(key, Some(value)),
            Op::PutIf { value, condition } => {
                let holds = match *condition {
                    Condition::Revision(want) => current == Some(want),
                    Condition::Exists => current.is_some(),
                    Condition::Absent => current.is_none(),
                };
                if holds {
                    self.change(key, Some(value))
                } else {
                    OpResult::PreconditionFailed { current }
                }
            }
            Op::Delete { condition } => {
                let holds = match *condition {
                    DeleteCondition::Always => true,
                    DeleteCondition::Revision(want) => current == Some(want),
                    DeleteCondition::Exists => current.is_some(),
                };
                if !holds {
                    OpResult::PreconditionFailed { current }
                } else if current.is_none() {
                    OpResult::NotFound
                } else {
                    self.change(key, None)
                }
            }
        }
    }

    fn change(&mut self, key: &str, value: Option<&Value>) -> OpResult {
        self.last_revision += 1;
        let revision = self.last_revision;
        match value {
            Some(value) => self.keys.insert(key.to_owned(), (value.clone(), revision)),
            None => self.keys.remove(key),
        };
        OpResult::Ok { revision }
    }
}
