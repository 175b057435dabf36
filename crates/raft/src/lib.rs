//! openraft wiring for hakv: the type configuration, the Raft log on fjall, the state
//! machine store that drives `hakv_store::StateMachine` from committed log entries, the peer
//! transport over HTTP, and [`RaftNode`], which puts them together.
//!
//! On disk, a node's data directory holds two fjall databases:
//! - `<data_dir>/raft-log`: the Raft log, vote, committed and last-purged log ids
//!   ([`LogStore`]); every append and vote is fsynced before openraft hears of it;
//! - `<data_dir>/state`: the state machine (`hakv_store`), written *without* fsync on apply,
//!   because the log is the durable record and openraft re-applies from `last_applied` after
//!   a crash; plus `<data_dir>/snapshot`, the last built or installed snapshot as a file.
//!
//! They are separate databases so that the log's short-lived entries and the state's
//! long-lived data do not share a journal: a log fsync does not wait on state-machine writes,
//! and journal files of the log are freed as soon as the log is purged, regardless of how long
//! the state machine's memtables live.

mod batch;
mod bootstrap;
mod client_activity;
mod config;
mod election_watch;
mod error;
mod handover;
mod identity;
mod leadership;
mod lease;
mod live_snapshot;
mod log_store;
mod membership;
mod node;
pub mod peer_client;
pub mod peer_server;
mod peer_trouble;
mod pre_vote;
mod proposer;
mod read_barrier;
pub mod restore;
mod rounds;
mod snapshot_check;
mod snapshot_data;
mod snapshot_file;
mod snapshot_policy;
mod snapshot_transfer;
mod state_machine_store;
mod status;

pub use batch::Batch;
pub use client_activity::ClientActivity;
pub use config::{PeerClientConfig, PeerServerLimits, ProposerConfig, RaftNodeConfig, RaftTiming};
pub use error::RaftStoreError;
pub use handover::HandoverError;
pub use identity::{Identity, IdentityError, cluster_id_for};
pub use lease::Lease;
pub use log_store::{CommittedIndex, LogStore};
pub use membership::{CATCH_UP_TIMEOUT, MembershipError};
pub use node::{NodeError, RaftNode};
pub use proposer::ProposeError;
pub use read_barrier::BarrierError;
pub use rounds::Rounds;
pub use snapshot_data::SnapshotData;
pub use state_machine_store::StateMachineStore;
pub use status::{ClusterStatus, MemberRole, MemberStatus, NodeRole, PeerAddr, ReplicationStatus};

openraft::declare_raft_types!(
    /// hakv's Raft types: a log entry carries a batch of store commands (many proposals share
    /// one entry, hence one fsync per node), and applying it yields their outcomes in order.
    pub TypeConfig:
        D = Batch,
        R = Vec<hakv_store::Outcome>,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = SnapshotData,
);

/// A member's address as recorded in the membership.
pub use openraft::BasicNode;

/// A node's id in the cluster.
pub type NodeId = u64;
/// One Raft log entry of hakv.
pub type Entry = openraft::Entry<TypeConfig>;
/// A Raft log position.
pub type LogId = openraft::LogId<NodeId>;
/// The error type openraft expects from storage.
pub type StorageError = openraft::StorageError<NodeId>;
/// A membership as recorded with the log position that set it.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// A running Raft node of hakv.
pub type Raft = openraft::Raft<TypeConfig>;
