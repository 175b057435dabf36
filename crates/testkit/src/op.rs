//! What a client asked for (`Op`) and what it learned (`OpResult`), in the terms of hakv's API.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// One request against one key, as hakv's HTTP API offers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `GET /data/{key}` (linearizable consistency; stale reads are not checkable).
    Get,
    /// `POST` or `PUT /data/{key}` without a precondition.
    Put { value: Value },
    /// `PUT`/`POST` with `If-Match` or `If-None-Match: *`.
    PutIf { value: Value, condition: Condition },
    /// `DELETE /data/{key}`, optionally with `If-Match`.
    Delete { condition: DeleteCondition },
}

/// The precondition of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// `If-Match: "<rev>"`: the key exists with exactly this revision.
    Revision(u64),
    /// `If-Match: *`: the key exists.
    Exists,
    /// `If-None-Match: *`: the key does not exist (create-only).
    Absent,
}

/// The precondition of a delete (`If-None-Match` is refused on DELETE, so no `Absent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteCondition {
    Always,
    Revision(u64),
    Exists,
}

/// What the client learned. Which variants make sense depends on the [`Op`]:
///
/// | op | possible results |
/// |---|---|
/// | `Get` | `Found`, `NotFound`, `Failed`, `Unknown` |
/// | `Put` | `Ok`, `Failed`, `Unknown` |
/// | `PutIf` | `Ok`, `PreconditionFailed`, `Failed`, `Unknown` |
/// | `Delete` | `Ok`, `NotFound` (`Always`), `PreconditionFailed` (with `If-Match`), `Failed`, `Unknown` |
///
/// Any other pairing is something the server can never answer, so the checker reports it as
/// not linearizable rather than trusting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OpResult {
    /// A read returned this value, whose last change had this revision (the `ETag`).
    Found { value: Value, revision: u64 },
    /// A read found no key, or an unconditional delete found nothing to delete.
    NotFound,
    /// A write or delete was applied as the change with this revision.
    Ok { revision: u64 },
    /// A condition did not hold; `current` is the key's revision then (`None`: absent).
    PreconditionFailed { current: Option<u64> },
    /// The request certainly had no effect (refused before it could be applied).
    Failed,
    /// The outcome is not known (timeout, reset connection): a write may have been applied at
    /// any moment after its invoke, or never.
    Unknown,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Get => write!(f, "get"),
            Op::Put { value } => write!(f, "put {value}"),
            Op::PutIf { value, condition } => write!(f, "put {value} {condition}"),
            Op::Delete { condition } => match condition {
                DeleteCondition::Always => write!(f, "delete"),
                DeleteCondition::Revision(r) => write!(f, "delete if-match {r}"),
                DeleteCondition::Exists => write!(f, "delete if-match *"),
            },
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Revision(r) => write!(f, "if-match {r}"),
            Condition::Exists => write!(f, "if-match *"),
            Condition::Absent => write!(f, "if-none-match *"),
        }
    }
}

impl fmt::Display for OpResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpResult::Found { value, revision } => write!(f, "found {value} @{revision}"),
            OpResult::NotFound => write!(f, "not found"),
            OpResult::Ok { revision } => write!(f, "ok @{revision}"),
            OpResult::PreconditionFailed { current: Some(r) } => {
                write!(f, "precondition failed, current @{r}")
            }
            OpResult::PreconditionFailed { current: None } => {
                write!(f, "precondition failed, key absent")
            }
            OpResult::Failed => write!(f, "failed"),
            OpResult::Unknown => write!(f, "unknown"),
        }
    }
}
