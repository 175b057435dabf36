//! A node that joins after the log was compacted catches up by snapshot transfer over the peer
//! transport, and a restarted node recovers from its own snapshot and log.

mod support;

use hakv_api::Revision;
use hakv_raft::{NodeId, RaftNode, RaftNodeConfig};
use hakv_store::{Condition, NoHook, Outcome};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use support::{eventually, put};
use tokio::net::TcpListener;

const WRITES: u64 = 50;

/// Node `id`'s configuration: it snapshots often and keeps no log behind a snapshot, so a
/// newcomer cannot be served from the log.
fn config(id: NodeId, dir: &Path) -> RaftNodeConfig {
    let mut config = RaftNodeConfig::new(id, dir.to_path_buf(), "catch-up-token".into());
    config.snapshot_every_entries = 20;
    config.logs_kept_after_snapshot = 0;
    config
}

async fn start_configured(config: RaftNodeConfig, addr: SocketAddr) -> RaftNode {
    let listener = TcpListener::bind(addr).await.unwrap();
    RaftNode::start(config, listener, Arc::new(NoHook)).await.unwrap()
}

async fn start(id: NodeId, dir: &Path, addr: SocketAddr) -> RaftNode {
    start_configured(config(id, dir), addr).await
}

/// Node 1, forming a cluster of itself and leading it.
async fn start_leading_alone(dir: &Path, addr: SocketAddr) -> RaftNode {
    lead_alone(start(1, dir, addr).await).await
}

/// `node` forms a cluster of itself and leads it.
async fn lead_alone(node: RaftNode) -> RaftNode {
    node.initialize(BTreeMap::from([(node.id(), node.member())]))
        .await
        .unwrap();
    wait_leader(&node).await;
    node
}

/// Writes `k{i}` = i for every i in `keys`, through `node`.
async fn write_keys(node: &RaftNode, keys: std::ops::Range<u64>) {
    for i in keys {
        node.propose(put(&format!("k{i}"), i as i64, Condition::Always))
            .await
            .unwrap();
    }
}

/// Starts node 2 at `dir`, adds it to `leader`'s cluster as a learner and waits until it has
/// applied up to `revision`.
async fn start_learner_caught_up_to(leader: &RaftNode, dir: &Path, revision: u64) -> RaftNode {
    let learner = start(2, dir, "127.0.0.1:0".parse().unwrap()).await;
    leader
        .add_learner(2, learner.member().addr, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    eventually("the learner has every write", || async {
        (learner.state().revision() == Revision(revision)).then_some(())
    })
    .await;
    learner
}

async fn wait_leader(node: &RaftNode) {
    eventually("the node leads", || async {
        (node.leader() == Some(node.id())).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_catches_up_by_snapshot_and_a_restart_recovers_locally() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let first = start_leading_alone(dirs[0].path(), any_port).await;
    write_keys(&first, 0..WRITES).await;
    eventually("the leader purges its log behind a snapshot", || async {
        let purged = first.raft().metrics().borrow().purged?;
        (purged.index >= 20).then_some(())
    })
    .await;

    let second = start_learner_caught_up_to(&first, dirs[1].path(), WRITES).await;
    for key in ["k0", "k25", "k49"] {
        assert_eq!(
            second.state().get(key).unwrap(),
            first.state().get(key).unwrap(),
            "{key}"
        );
    }
    let installed = second.raft().metrics().borrow().snapshot;
    assert!(
        installed.is_some_and(|s| s.index >= 20),
        "caught up by snapshot: {installed:?}"
    );
    // The received file is removed after its install (in the background): only the
    // checkpoint stays.
    let snapshot_dir = dirs[1].path().join("snapshot");
    eventually("the installed file is removed", || async {
        let names: Vec<_> = std::fs::read_dir(&snapshot_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        (names == ["checkpoint"]).then_some(())
    })
    .await;

    let addr = first.addr().unwrap();
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();

    // Node 1 is the only voter: restarted on its data and address, it leads again with
    // everything it had, and initializing again changes nothing.
    let first = start(1, dirs[0].path(), addr).await;
    first
        .initialize(BTreeMap::from([(1, first.member())]))
        .await
        .unwrap();
    wait_leader(&first).await;
    assert_eq!(first.state().revision(), Revision(WRITES));
    let outcome = first
        .propose(put("k0", -1, Condition::Revision(Revision(1))))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Written {
            revision: Revision(WRITES + 1),
            created: false
        }
    );
    first.shutdown().await.unwrap();
}

/// A newcomer is sent the leader's current state, not a snapshot at its last checkpoint and
/// the log after it: the checkpoint can lag by a quarter of the state, which the newcomer
/// would otherwise receive as one log append at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_is_sent_the_current_state_not_the_checkpoint() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let first = start_leading_alone(dirs[0].path(), any_port).await;
    write_keys(&first, 0..25).await;
    let checkpoint = eventually("the leader takes a checkpoint and purges its log", || async {
        let metrics = first.raft().metrics().borrow().clone();
        (metrics.purged?.index >= 20).then_some(metrics.snapshot?)
    })
    .await;
    // Fewer writes than `snapshot_every_entries`: the checkpoint stays behind them.
    write_keys(&first, 25..40).await;
    assert_eq!(first.raft().metrics().borrow().snapshot, Some(checkpoint));

    let second = start_learner_caught_up_to(&first, dirs[1].path(), 40).await;
    let installed = second.raft().metrics().borrow().snapshot;
    assert!(
        installed.is_some_and(|s| s.index > checkpoint.index + 15),
        "expected the learner to install the current state, got {installed:?} (checkpoint: {checkpoint})"
    );
    assert_eq!(
        second.state().get("k39").unwrap(),
        first.state().get("k39").unwrap()
    );
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
}

/// Membership changes that cannot be right are errors that change nothing: adding a member
/// nothing runs at, adding a voter twice, removing a stranger. A member that cannot catch up
/// in time is left a learner, never promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_membership_changes_fail_and_change_nothing() {
    use hakv_raft::MembershipError;
    use std::time::Duration;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let first = start_leading_alone(dirs[0].path(), any_port).await;
    let members = || first.status().members.iter().map(|m| m.id).collect::<Vec<_>>();

    // Nothing listens there (a port just released).
    let free = TcpListener::bind(any_port).await.unwrap().local_addr().unwrap();
    let refused = first.add_voter(4, free.to_string(), Duration::from_secs(5)).await;
    assert!(
        matches!(refused, Err(MembershipError::Unreachable { id: 4, .. })),
        "{refused:?}"
    );
    assert_eq!(members(), [1]);

    let twice = first
        .add_voter(1, first.member().addr, Duration::from_secs(5))
        .await;
    assert!(
        matches!(
            twice,
            Err(MembershipError::AlreadyMember { id: 1, role: "voter" })
        ),
        "{twice:?}"
    );
    let stranger = first.remove_member(9).await;
    assert!(
        matches!(stranger, Err(MembershipError::NotMember(9))),
        "{stranger:?}"
    );
    assert_eq!(members(), [1]);

    // Something accepts connections but is no member: it never catches up.
    let silent = TcpListener::bind(any_port).await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let stuck = first.add_voter(5, addr, Duration::from_secs(1)).await;
    assert!(
        matches!(stuck, Err(MembershipError::CatchUpTimeout { id: 5, .. })),
        "{stuck:?}"
    );
    let learner = first.status().members.into_iter().find(|m| m.id == 5).unwrap();
    assert_eq!(format!("{:?}", learner.role), "Learner");
    first.remove_member(5).await.unwrap();
    assert_eq!(members(), [1]);
    first.shutdown().await.unwrap();
}

/// A member that receives and installs the state while clients write is not cut off from the
/// log meanwhile: the leader holds its checkpoints (and the purge after them) back, so the
/// member goes on from the log after the snapshot it installed and never needs a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_installing_a_snapshot_under_writes_is_sent_only_one() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut leader = config(1, dirs[0].path());
    // Slow enough that the transfer, paced while clients write, takes seconds.
    leader.peer_client.snapshot_bytes_per_second = 4 << 10;
    let first = lead_alone(start_configured(leader, any_port).await).await;
    write_keys(&first, 0..300).await;
    eventually("the leader purges its log behind a checkpoint", || async {
        (first.raft().metrics().borrow().purged?.index >= 200).then_some(())
    })
    .await;

    // Clients write all along the catch-up.
    let first = Arc::new(first);
    let writing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn({
        let (first, writing) = (first.clone(), writing.clone());
        async move {
            let mut i = 300u64;
            while writing.load(Ordering::Relaxed) && i < 100_000 {
                first.client_activity().touch();
                first
                    .propose(put(&format!("k{i}"), i as i64, Condition::Always))
                    .await
                    .unwrap();
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            i
        }
    });

    let mut learner = config(2, dirs[1].path());
    learner.snapshot_every_entries = u64::MAX; // every snapshot it has was sent to it
    let second = start_configured(learner, any_port).await;
    let mut installs = second.raft().metrics();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while installs.changed().await.is_ok() {
            let snapshot = installs.borrow().snapshot;
            if snapshot.is_some() && seen.last() != Some(&snapshot) {
                seen.push(snapshot);
            }
        }
        seen
    });
    first
        .add_learner(2, second.member().addr, Duration::from_secs(60))
        .await
        .unwrap();
    eventually("the learner installs a snapshot", || async {
        second.raft().metrics().borrow().snapshot.map(|_| ())
    })
    .await;
    // Long enough that, without the hold-back, checkpoints of the leader would have purged
    // the log the learner needs after its snapshot.
    tokio::time::sleep(Duration::from_secs(1)).await;
    writing.store(false, Ordering::Relaxed);
    let written = writer.await.unwrap();
    eventually("the learner has every write", || async {
        (second.state().revision() == Revision(written)).then_some(())
    })
    .await;
    second.shutdown().await.unwrap();
    let installed = watcher.await.unwrap();
    assert_eq!(
        installed.len(),
        1,
        "snapshots installed by the learner: {installed:?}"
    );
    Arc::into_inner(first).unwrap().shutdown().await.unwrap();
}
