//! The payload of a normal Raft log entry: the commands of several concurrent proposals,
//! packed together so they share one append (one fsync) on every node.

use hakv_store::{Command, Op};
use serde::{Deserialize, Serialize};

/// Commands applied in order, as one state-machine batch; the entry's response holds one
/// `Outcome` per command, in the same order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Batch {
    pub commands: Vec<Command>,
}

impl Batch {
    /// A batch of one command (what an unbatched proposal would append).
    pub fn one(command: Command) -> Batch {
        Batch {
            commands: vec![command],
        }
    }
}

/// Roughly how many bytes `command` adds to an entry; used to cap entry sizes well below the
/// peers' append body limit, not for accounting.
pub(crate) fn approx_bytes(command: &Command) -> usize {
    // Field names, revisions and JSON punctuation: a generous constant per command.
    const OVERHEAD: usize = 96;
    OVERHEAD
        + match &command.op {
            Op::Put { key, value, .. } => key.len() + value.as_bytes().len(),
            Op::Delete { key, .. } | Op::Expire { key, .. } => key.len(),
        }
}
