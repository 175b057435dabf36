//! Configuration of a Raft node: where its data lives, how it talks to peers, and the Raft
//! timings, with defaults tuned for a LAN.

use crate::NodeId;
use crate::client_activity::ClientActivity;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Raft timings, in milliseconds.
///
/// Every election goes through a pre-vote (`pre_vote`): a voter gives up its leader after
/// `election_timeout_max_ms` (plus 10–33 %) of silence when the leader's host does not
/// complete a TCP handshake (refused: its process is gone; unanswered: the network to it is
/// cut), and after `leader_stall_ms` when it still does (it may only be slow: an fsync stall,
/// a starved core, a long append, a paused process). So a crashed leader is replaced in about
/// 0.2 s by default, a cut-off one in about 0.45 s, and a busy one is not deposed for a late
/// heartbeat.
///
/// openraft 0.9 gives a leader a lease of `election_timeout_max_ms`: voters refuse to vote for
/// anyone else until they have not heard from the leader for that long. hakv's election
/// watch (`election_watch`) then campaigns at once (after a random 10–33 % more), so a dead
/// leader is replaced about 1.1–1.3 × `election_timeout_max_ms` after its last heartbeat;
/// `election_timeout_min_ms..max_ms` is openraft's own random timer, used before any leader
/// was elected and to retry a failed election.
///
/// The defaults suit a LAN or one machine: a round trip is well under a millisecond, so a
/// 50 ms heartbeat costs little, and the 150 ms lease is three heartbeats, so a leader that
/// is merely busy (full load on 2 cores) still gets one through before anyone campaigns
/// (bench/elections.sh checks that). Raise all three together on slower networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// How long a leader whose host still completes TCP handshakes may stay silent before it
    /// is replaced (one that refuses them, or does not answer them, is replaced sooner).
    pub leader_stall_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: 50,
            election_timeout_min_ms: 75,
            election_timeout_max_ms: 150,
            leader_stall_ms: 1000,
        }
    }
}

/// How this node calls its peers.
#[derive(Debug, Clone)]
pub struct PeerClientConfig {
    /// Giving up on a TCP connect: a dead peer must not hold a heartbeat for long.
    pub connect_timeout: Duration,
    /// Upper bound of one append or vote call (openraft may ask for less).
    pub request_timeout: Duration,
    /// A snapshot transfer fails when the peer takes no frame for this long (there is no
    /// bound on the whole transfer: a large state takes as long as it takes).
    pub snapshot_idle_timeout: Duration,
    /// How long the peer may take to install a snapshot once it has all of it.
    pub snapshot_install_timeout: Duration,
    /// Pace of a snapshot transfer while this node serves clients, so it leaves the disk,
    /// the network and the cores to them (0: unpaced). With no client for a while
    /// ([`ClientActivity`]), a transfer goes at full speed.
    pub snapshot_bytes_per_second: u64,
    /// When clients were last served (the HTTP server touches it).
    pub client_activity: Arc<ClientActivity>,
    /// Idle pooled connections are closed after this; kept below a server's idle timeout so
    /// a request never goes out on a connection the peer is closing.
    pub pool_idle_timeout: Duration,
    /// TLS for calls to peers (then at `https://`): the CA their certificates chain to, and
    /// this member's certificate for peers that require one. `None`: plain HTTP.
    pub tls: Option<hakv_tls::ClientTls>,
}

impl Default for PeerClientConfig {
    fn default() -> Self {
        PeerClientConfig {
            connect_timeout: Duration::from_millis(100),
            request_timeout: Duration::from_secs(2),
            snapshot_idle_timeout: Duration::from_secs(30),
            snapshot_install_timeout: Duration::from_secs(30 * 60),
            snapshot_bytes_per_second: 64 << 20,
            client_activity: Arc::default(),
            pool_idle_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// Limits of the peer endpoints.
#[derive(Debug, Clone, Copy)]
pub struct PeerServerLimits {
    /// Largest append or vote request body.
    pub max_append_bytes: usize,
    /// A snapshot transfer being received fails when no bytes arrive for this long.
    pub snapshot_idle_timeout: Duration,
    /// The pace senders keep to while they serve clients: always `PeerClientConfig`'s
    /// `snapshot_bytes_per_second`, which `RaftNode` copies here (so not settable on its own).
    /// A snapshot that arrived no faster is installed no faster; one that came faster was sent
    /// with no client waiting and is installed at full speed. 0: never paced.
    pub(crate) snapshot_pace: u64,
}

impl Default for PeerServerLimits {
    fn default() -> Self {
        PeerServerLimits {
            max_append_bytes: 64 << 20,
            snapshot_idle_timeout: Duration::from_secs(30),
            snapshot_pace: PeerClientConfig::default().snapshot_bytes_per_second,
        }
    }
}

/// Limits of the proposer's group commit ([`RaftNode::propose`](crate::RaftNode::propose)).
#[derive(Debug, Clone)]
pub struct ProposerConfig {
    /// Proposals waiting for a log entry; beyond this, proposals are refused at once
    /// (`ProposeError::Overloaded`) instead of queueing without bound.
    pub queue_capacity: usize,
    /// Most commands in one log entry.
    pub max_batch_commands: usize,
    /// Rough cap on one entry's size (one larger command still goes, alone). Small because
    /// openraft 0.9 gives an append RPC one heartbeat interval to complete, encoding,
    /// transfer and the follower's fsync included (docs/cluster.md, Large values).
    pub max_batch_bytes: usize,
    /// Entries proposed but not yet applied at once. More than one lets the next batch form
    /// and be appended while the previous one is replicating; a few are enough because every
    /// entry waits for its own fsync on the leader anyway (openraft 0.9 appends one by one).
    pub max_in_flight: usize,
    /// Longest wait for one entry to be applied before its proposers hear `Unknown`.
    pub timeout: Duration,
}

impl Default for ProposerConfig {
    fn default() -> Self {
        ProposerConfig {
            queue_capacity: 4096,
            max_batch_commands: 1024,
            max_batch_bytes: 1 << 20,
            max_in_flight: 3,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Everything [`RaftNode::open`](crate::RaftNode::open) needs.
#[derive(Debug, Clone)]
pub struct RaftNodeConfig {
    pub node_id: NodeId,
    /// Holds `raft-log/`, `state/` and `snapshot/`.
    pub data_dir: PathBuf,
    /// The shared secret peers present as `Authorization: Bearer <token>`.
    pub cluster_token: String,
    /// The address peers reach this node at (`host:port`), recorded in the membership.
    /// [`RaftNode::start`](crate::RaftNode::start) fills it from its listener when unset;
    /// [`RaftNode::open`](crate::RaftNode::open) requires it.
    pub advertise_addr: Option<String>,
    pub timing: RaftTiming,
    pub peer_client: PeerClientConfig,
    pub peer_limits: PeerServerLimits,
    pub proposer: ProposerConfig,
    /// Build a snapshot (and let the log be purged) after this many entries since the last.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind the last snapshot, so a follower that lags by less
    /// catches up from the log instead of a whole snapshot.
    pub logs_kept_after_snapshot: u64,
    /// fjall block cache of the state machine, in bytes.
    pub block_cache_bytes: u64,
    /// Refuse appends and snapshots while fewer bytes than this are free on the data
    /// directory's filesystem (`None`: a tenth of it, at most 1 GiB); see `hakv_store::DiskSpace`.
    pub disk_reserve: Option<u64>,
    /// Serve the leader's linearizable reads under a lease instead of a heartbeat round
    /// each (`lease.rs`; assumes no member's clock runs more than 1.5 times as fast as another's).
    pub lease_reads: bool,
}

impl RaftNodeConfig {
    pub fn new(node_id: NodeId, data_dir: PathBuf, cluster_token: String) -> RaftNodeConfig {
        RaftNodeConfig {
            node_id,
            data_dir,
            cluster_token,
            advertise_addr: None,
            timing: RaftTiming::default(),
            peer_client: PeerClientConfig::default(),
            peer_limits: PeerServerLimits::default(),
            proposer: ProposerConfig::default(),
            snapshot_every_entries: 10_000,
            logs_kept_after_snapshot: 1_000,
            block_cache_bytes: 64 << 20,
            disk_reserve: None,
            lease_reads: true,
        }
    }

    /// openraft's configuration from ours; fails on inconsistent timings.
    pub fn openraft_config(&self) -> Result<openraft::Config, Box<openraft::ConfigError>> {
        openraft::Config {
            cluster_name: "hakv".into(),
            heartbeat_interval: self.timing.heartbeat_ms,
            election_timeout_min: self.timing.election_timeout_min_ms,
            election_timeout_max: self.timing.election_timeout_max_ms,
            install_snapshot_timeout: self.peer_client.snapshot_idle_timeout.as_millis() as u64,
            // hakv's own policy triggers snapshots (`snapshot_policy`): entries and bytes.
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            // Every election goes through hakv's pre-vote (`election_watch`).
            enable_elect: false,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_timings_do_not() {
        let mut config = RaftNodeConfig::new(1, PathBuf::from("unused"), "secret".into());
        let raft = config.openraft_config().unwrap();
        assert_eq!(raft.heartbeat_interval, 50);
        config.timing.election_timeout_min_ms = 40;
        assert!(
            config.openraft_config().is_err(),
            "election timeout below the heartbeat"
        );
    }
}
