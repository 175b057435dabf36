//! The Raft state machine: committed entries applied to `hakv_store::StateMachine`, and
//! snapshots of it built, stored and installed.
//!
//! Apply writes each call's commands, the last applied log id and the last membership in ONE
//! atomic fjall batch without fsync: the Raft log is the durable record, and after a crash
//! openraft re-applies from whatever `last_applied` survived, which is always consistent with
//! the data beside it.
//!
//! The one time the state machine must be durable on its own is when the log stops covering
//! it: before openraft purges entries that a snapshot covers. So building a snapshot fsyncs
//! the state machine after exporting it, and installing one is fsynced.

use crate::error::{RaftStoreError, blocking};
use crate::snapshot_file::SnapshotFile;
use crate::{Entry, LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use hakv_store::{ApplyHook, ApplyOptions, Command, Outcome, StateMachine};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// `meta` keys of the state machine written atomically with every applied batch.
const LAST_APPLIED_KEY: &[u8] = b"raft/last_applied";
const MEMBERSHIP_KEY: &[u8] = b"raft/membership";

/// The state machine side of openraft's storage.
pub struct StateMachineStore {
    state: Arc<StateMachine>,
    hook: Arc<dyn ApplyHook>,
    snapshots: SnapshotFile,
    /// Mirrors what the last batch wrote to `meta`, so `applied_state` needs no disk read.
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl StateMachineStore {
    /// Wraps an open state machine. `snapshot_dir` holds the last built or installed snapshot;
    /// `hook` sees every applied change (the node's cache hangs there).
    pub fn open(
        state: Arc<StateMachine>,
        hook: Arc<dyn ApplyHook>,
        snapshot_dir: PathBuf,
    ) -> Result<StateMachineStore, RaftStoreError> {
        let last_applied = read_json(&state, LAST_APPLIED_KEY)?.flatten();
        let membership = read_json(&state, MEMBERSHIP_KEY)?.unwrap_or_default();
        Ok(StateMachineStore {
            state,
            hook,
            snapshots: SnapshotFile::open(snapshot_dir)?,
            last_applied,
            membership,
        })
    }

    /// The state machine this store applies to (for reads).
    pub fn state(&self) -> &Arc<StateMachine> {
        &self.state
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    state: &StateMachine,
    key: &[u8],
) -> Result<Option<T>, RaftStoreError> {
    match state.meta(key)? {
        Some(bytes) => decode_json(&bytes).map(Some),
        None => Ok(None),
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, RaftStoreError> {
    serde_json::from_slice(bytes).map_err(|e| RaftStoreError::corrupt("state machine raft meta", e))
}

fn encode_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("openraft's ids and memberships serialize to JSON")
}

/// The `meta` entries that record how far the state machine has applied the log.
fn applied_meta(
    last_applied: &Option<LogId>,
    membership: &StoredMembership,
) -> [(&'static [u8], Vec<u8>); 2] {
    [
        (LAST_APPLIED_KEY, encode_json(last_applied)),
        (MEMBERSHIP_KEY, encode_json(membership)),
    ]
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Outcome>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Every entry's commands go into ONE state-machine batch; `spans` remembers which
        // slice of the outcomes belongs to which entry (blank and membership entries: none).
        let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
        let mut commands: Vec<Command> = Vec::new();
        let mut last = None;
        let mut membership = self.membership.clone();
        for entry in entries {
            last = Some(entry.log_id);
            let start = commands.len();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => commands.extend(batch.commands),
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            spans.push(start..commands.len());
        }
        let Some(last) = last else {
            return Ok(Vec::new());
        };
        let meta = applied_meta(&Some(last), &membership);
        let meta: Vec<(&[u8], Vec<u8>)> = meta.into_iter().collect();
        let options = ApplyOptions {
            durable: false,
            meta: &meta,
        };
        let hook = self.hook.as_ref();
        let (outcomes, changes) = self
            .state
            .apply_batch_with(&commands, &options, |changes, revision| {
                hook.before_visible(changes, revision)
            })
            .map_err(|e| RaftStoreError::from(e).applying(last))?;
        hook.after_visible(&changes);
        self.last_applied = Some(last);
        self.membership = membership;
        Ok(spans.into_iter().map(|span| outcomes[span].to_vec()).collect())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let bytes = snapshot.into_inner();
        let state = self.state.clone();
        let hook = self.hook.clone();
        let snapshots = self.snapshots.clone();
        let meta_owned = meta.clone();
        // The state is replaced first and the file written second: a crash in between leaves
        // an older snapshot file beside a newer state, which openraft tolerates (it builds a
        // new snapshot when needed); the other order could announce a snapshot the state
        // machine does not hold.
        blocking(move || {
            let extra = applied_meta(&meta_owned.last_log_id, &meta_owned.last_membership);
            let extra: Vec<(&[u8], Vec<u8>)> = extra.into_iter().collect();
            state.import_snapshot(&bytes, &extra, |revision| hook.reset(revision))?;
            snapshots.save(&meta_owned, &bytes)
        })
        .await
        .map_err(|e| e.into_storage(subject, ErrorVerb::Write))?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snapshots = self.snapshots.clone();
        let loaded = blocking(move || snapshots.load())
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Read))?;
        Ok(loaded.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

/// Builds a snapshot from one consistent fjall view of the state machine; runs beside apply.
pub struct SnapshotBuilder {
    state: Arc<StateMachine>,
    snapshots: SnapshotFile,
}

impl SnapshotBuilder {
    fn build(&self) -> Result<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>), RaftStoreError> {
        let export = self.state.export_snapshot()?;
        // Everything exported is now fsynced before anyone may purge the log up to it.
        self.state.persist()?;
        // The log position comes from the same view as the data, never from a newer apply.
        let last_log_id: Option<LogId> = match export.meta.get(LAST_APPLIED_KEY) {
            Some(bytes) => decode_json::<Option<LogId>>(bytes)?,
            None => None,
        };
        let last_membership: StoredMembership = match export.meta.get(MEMBERSHIP_KEY) {
            Some(bytes) => decode_json(bytes)?,
            None => StoredMembership::default(),
        };
        let built_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let snapshot_id = match &last_log_id {
            Some(id) => format!("{}-{}-{built_at}", id.leader_id, id.index),
            None => format!("empty-{built_at}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        self.snapshots.save(&meta, &export.bytes)?;
        Ok((meta, export.bytes))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let builder = SnapshotBuilder {
            state: self.state.clone(),
            snapshots: self.snapshots.clone(),
        };
        let (meta, bytes) = blocking(move || builder.build())
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Write))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
