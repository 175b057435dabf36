//! Single edits that make a linearizable history certainly not linearizable, to show the
//! checker notices one bad answer among thousands.

use hakv_testkit::{Op, OpResult, Operation};
use serde_json::json;

/// Makes the first read that found something return a value no one wrote. Returns its index.
pub fn read_of_unwritten_value(operations: &mut [Operation]) -> Option<usize> {
    let index = operations
        .iter()
        .position(|o| matches!(o.result, OpResult::Found { .. }) && o.complete_ns.is_some())?;
    if let OpResult::Found { value, .. } = &mut operations[index].result {
        *value = json!("never written");
    }
    Some(index)
}

/// Makes the last possible read return an older write's value and revision, although a
/// newer write had completed before the read was sent. Returns the read's index.
pub fn stale_read(operations: &mut [Operation]) -> Option<usize> {
    for index in (0..operations.len()).rev() {
        let read = &operations[index];
        if read.op != Op::Get || read.complete_ns.is_none() {
            continue;
        }
        let done_before: Vec<&Operation> = operations
            .iter()
            .filter(|w| w.key == read.key && w.complete_ns.is_some_and(|done| done < read.invoke_ns))
            .collect();
        let newest = done_before.iter().filter_map(|w| ok_revision(w)).max();
        let oldest_put = done_before
            .iter()
            .filter_map(|w| Some((ok_revision(w)?, written_value(w)?)))
            .min_by_key(|(revision, _)| *revision);
        if let (Some(newest), Some((revision, value))) = (newest, oldest_put)
            && newest > revision
        {
            operations[index].result = OpResult::Found { value, revision };
            return Some(index);
        }
    }
    None
}

fn ok_revision(operation: &Operation) -> Option<u64> {
    match (&operation.op, &operation.result) {
        (Op::Get, _) => None,
        (_, OpResult::Ok { revision }) => Some(*revision),
        _ => None,
    }
}

fn written_value(operation: &Operation) -> Option<serde_json::Value> {
    match &operation.op {
        Op::Put { value } | Op::PutIf { value, .. } => Some(value.clone()),
        _ => None,
    }
}
