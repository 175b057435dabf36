//! The durable store: a state machine of keys, values, revisions and expiry times on fjall,
//! fed by a group-commit writer. No network code lives here, so the Raft layer can drive the
//! same state machine from its log.

mod answers;
pub mod background;
mod chunks;
mod clock;
mod command;
mod disk_space;
mod error;
mod expiry;
mod group_commit;
mod record;
pub mod removal;
mod snapshot;
mod state_machine;
pub mod writeback;

pub use chunks::{Chunk, ChunkWriter};
pub use clock::{Clock, wall_clock_ms};
pub use command::{Command, Condition, Op, Outcome};
pub use disk_space::DiskSpace;
pub use error::StoreError;
pub use group_commit::{ApplyHook, NoHook, ProposeError, Writer, WriterConfig};
pub use record::Record;
pub use snapshot::{SnapshotExport, SnapshotImport, SnapshotSummary, SnapshotView};
pub use state_machine::{
    ApplyOptions, Change, DATA_MEMTABLE_BYTES, DEFAULT_L0_TRIGGER, MAX_JOURNAL_BYTES, SMALL_MEMTABLE_BYTES,
    StateMachine, StoreConfig, StoreStats, staggered_l0_trigger,
};
