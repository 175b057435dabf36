//! The Raft state machine: committed entries applied to `hakv_store::StateMachine`, and
//! snapshots of it built, stored and installed.
//!
//! Apply writes each call's commands, the last applied log id and the last membership in ONE
//! atomic fjall batch without fsync: the Raft log is the durable record, and after a crash
//! openraft re-applies from whatever `last_applied` survived, which is always consistent with
//! the data beside it.
//!
//! The one time the state machine must be durable on its own is when the log stops covering
//! it: before openraft purges entries that a snapshot covers. So a snapshot here is a
//! *checkpoint* (`snapshot_file`): a journal fsync and the position it made durable, not a
//! copy of the state. A member that needs a snapshot is sent one streamed from a point-in-time
//! view (`live_snapshot`); one received is installed from a file in bounded batches, fsynced.
//! Nothing here holds a whole snapshot or the whole state in memory, and nothing rewrites the
//! whole state but an install.

use crate::error::{RaftStoreError, blocking};
use crate::live_snapshot;
use crate::snapshot_data::SnapshotData;
use crate::snapshot_file::{LAST_APPLIED_KEY, MEMBERSHIP_KEY, SnapshotFile, applied_meta, decode_json};
use crate::{Entry, LogId, NodeId, StorageError, StoredMembership, TypeConfig};
use hakv_store::{ApplyHook, ApplyOptions, Command, Outcome, StateMachine};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
};
use std::path::PathBuf;
use std::sync::Arc;

/// The state machine side of openraft's storage.
pub struct StateMachineStore {
    state: Arc<StateMachine>,
    hook: Arc<dyn ApplyHook>,
    snapshots: SnapshotFile,
    /// Mirrors what the last batch wrote to `meta`, so `applied_state` needs no disk read.
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The term and index of `last_applied`, for readers waiting for a read index: cheaper
    /// to watch than openraft's metrics, which its waiters clone whole at every change.
    applied_index: AppliedIndex,
    /// Set once openraft has started: from then on a snapshot is asked for only to be sent,
    /// and is streamed from the current state (`live_snapshot`). At start openraft reads the
    /// snapshot's meta to know what the log may be purged up to, and only the checkpoint (the
    /// position fsynced) may answer that.
    send_live: Arc<std::sync::atomic::AtomicBool>,
}

/// The term and index of the last entry whose changes readers can see, as they change.
pub type AppliedIndex = Arc<tokio::sync::watch::Sender<(u64, u64)>>;

fn term_and_index(log_id: Option<LogId>) -> (u64, u64) {
    log_id.map_or((0, 0), |id| (id.leader_id.term, id.index))
}

impl StateMachineStore {
    /// Wraps an open state machine. `snapshot_dir` holds the checkpoint and received
    /// snapshots; `hook` sees every applied change (the node's cache hangs there).
    pub fn open(
        state: Arc<StateMachine>,
        hook: Arc<dyn ApplyHook>,
        snapshot_dir: PathBuf,
    ) -> Result<StateMachineStore, RaftStoreError> {
        let snapshots = SnapshotFile::open(snapshot_dir)?;
        // A crash in the middle of an install left the state half replaced: finish it first.
        snapshots.recover(&state, &|revision| hook.reset(revision))?;
        let last_applied = read_json(&state, LAST_APPLIED_KEY)?.flatten();
        let membership = read_json(&state, MEMBERSHIP_KEY)?.unwrap_or_default();
        let applied_index = Arc::new(tokio::sync::watch::Sender::new(term_and_index(last_applied)));
        Ok(StateMachineStore {
            state,
            hook,
            snapshots,
            last_applied,
            membership,
            applied_index,
            send_live: Arc::default(),
        })
    }

    /// Call once openraft has started (see `send_live`).
    pub(crate) fn live_snapshots_switch(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.send_live.clone()
    }

    /// The term and index of the last applied entry, as they change.
    pub(crate) fn applied_index(&self) -> AppliedIndex {
        self.applied_index.clone()
    }

    /// A snapshot stream written into a new received file, as the peer server would.
    async fn received_from_stream(
        &self,
        mut stream: Box<SnapshotData>,
    ) -> Result<Box<SnapshotData>, RaftStoreError> {
        use tokio::io::AsyncWriteExt;
        let snapshots = self.snapshots.clone();
        let mut file = blocking(move || snapshots.incoming()).await?;
        tokio::io::copy(&mut *stream, &mut file).await?;
        file.flush().await?;
        Ok(Box::new(file))
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
        self.applied_index.send_replace(term_and_index(Some(last)));
        Ok(spans.into_iter().map(|span| outcomes[span].to_vec()).collect())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        let snapshots = self.snapshots.clone();
        let incoming = blocking(move || snapshots.incoming())
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Write))?;
        Ok(Box::new(incoming))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let snapshot = match snapshot.path() {
            Some(_) => snapshot,
            // A stream handed over in-process (openraft's storage suite does): into a file first.
            None => self
                .received_from_stream(snapshot)
                .await
                .map_err(|e| e.into_storage(subject.clone(), ErrorVerb::Write))?,
        };
        let received = snapshot
            .path()
            .expect("a received snapshot is a file")
            .to_path_buf();
        let verified = snapshot.is_verified();
        let pace = snapshot.install_pace();
        drop(snapshot);
        let state = self.state.clone();
        let hook = self.hook.clone();
        let snapshots = self.snapshots.clone();
        let meta_owned = meta.clone();
        // Not at background priority (hakv_store::background says why): it writes.
        blocking(move || {
            snapshots.install(&state, &meta_owned, &received, verified, pace, &|revision| {
                hook.reset(revision)
            })
        })
        .await
        .map_err(|e| e.into_storage(subject, ErrorVerb::Write))?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.applied_index.send_replace(term_and_index(meta.last_log_id));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snapshots = self.snapshots.clone();
        let checkpoint = blocking(move || snapshots.checkpoint_meta())
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Read))?;
        let Some(checkpoint) = checkpoint else {
            return Ok(None); // Nothing was ever purged: no snapshot is needed.
        };
        let sending = self.send_live.load(std::sync::atomic::Ordering::Relaxed);
        if !sending && self.last_applied != checkpoint.last_log_id {
            // At start: only the checkpoint's position is asked for.
            return Ok(Some(Snapshot {
                meta: checkpoint,
                snapshot: Box::new(SnapshotData::unavailable()),
            }));
        }
        let checkpoint_at = checkpoint.last_log_id;
        let (meta, data) = match live_snapshot::stream(self.state.clone(), checkpoint.clone()).await {
            Ok(live) => live,
            // Not fatal to the Raft core, as a storage error would be: this transfer fails
            // when its data is read, and openraft sends the snapshot again later.
            Err(e) => {
                tracing::warn!(error = %e, "no snapshot of the current state to send");
                (checkpoint, SnapshotData::unavailable())
            }
        };
        if sending {
            tracing::info!(
                checkpoint = checkpoint_at.map(|id| id.index),
                live_upto = meta.last_log_id.map(|id| id.index),
                "sending a snapshot of the current state"
            );
        }
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(data),
        }))
    }
}

/// Takes checkpoints (`snapshot_file`); runs beside apply.
pub struct SnapshotBuilder {
    state: Arc<StateMachine>,
    snapshots: SnapshotFile,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (state, snapshots) = (self.state.clone(), self.snapshots.clone());
        let meta = blocking(move || snapshots.checkpoint(&state))
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Write))?;
        // openraft keeps only the meta of a snapshot it built; one to send is asked for anew.
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::unavailable()),
        })
    }
}
