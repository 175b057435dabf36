//! The proposer and the read path on three in-process nodes: concurrent proposals share log
//! entries, followers and cut-off leaders refuse at once with the right error, read barriers
//! make a leader's write visible on a follower, and the status reports the cluster. Node 1
//! is served the way the server does it (`open` + `peer_router` on a listener it owns).

mod support;

use hakv_api::Revision;
use hakv_raft::{BarrierError, MemberRole, NodeId, NodeRole, ProposeError, RaftNode, RaftNodeConfig};
use hakv_store::{Condition, NoHook, Outcome};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{eventually, put};
use tempfile::TempDir;
use tokio::net::TcpListener;

const TOKEN: &str = "proposal-test-token";
const WAIT: Duration = Duration::from_secs(10);

struct Cluster {
    _dirs: Vec<TempDir>,
    nodes: Vec<RaftNode>,
}

impl Cluster {
    async fn start() -> Cluster {
        let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut nodes = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let id = i as NodeId + 1;
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut config = RaftNodeConfig::new(id, dir.path().to_path_buf(), TOKEN.into());
            let node = if id == 1 {
                config.advertise_addr = Some(listener.local_addr().unwrap().to_string());
                let node = RaftNode::open(config, Arc::new(NoHook)).await.unwrap();
                let router = node.peer_router();
                tokio::spawn(async move { axum::serve(listener, router).await });
                node
            } else {
                RaftNode::start(config, listener, Arc::new(NoHook)).await.unwrap()
            };
            nodes.push(node);
        }
        let members: BTreeMap<NodeId, _> = nodes.iter().map(|n| (n.id(), n.member())).collect();
        nodes[0].initialize(members).await.unwrap();
        let cluster = Cluster { _dirs: dirs, nodes };
        cluster.leader().await;
        cluster
    }

    /// The node that every node agrees leads, once it has heard from a quorum.
    async fn leader(&self) -> &RaftNode {
        eventually("an agreed leader with a quorum", || async {
            let leader = self.nodes[0].leader()?;
            let node = self.nodes.iter().find(|n| n.id() == leader)?;
            let agreed = self.nodes.iter().all(|n| n.leader() == Some(leader));
            (agreed && node.leader_has_quorum()).then_some(node)
        })
        .await
    }

    fn followers(&self, leader: NodeId) -> impl Iterator<Item = &RaftNode> {
        self.nodes.iter().filter(move |n| n.id() != leader)
    }

    async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await.unwrap();
        }
    }
}

fn counter_value(node: &RaftNode, key: &str) -> (i64, Revision) {
    let record = node.state().get(key).unwrap().expect("the counter exists");
    let value = std::str::from_utf8(record.value.as_bytes())
        .unwrap()
        .parse()
        .unwrap();
    (value, record.revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_share_log_entries_and_none_is_lost() {
    const TASKS: usize = 64;
    const ATTEMPTS: usize = 50;
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    leader
        .propose(put("counter", 0, Condition::Absent))
        .await
        .unwrap();
    let entries_before = leader.status().last_log_index.unwrap();

    let successes = AtomicU64::new(0);
    let increment = || async {
        for _ in 0..ATTEMPTS {
            let (value, revision) = counter_value(leader, "counter");
            let command = put("counter", value + 1, Condition::Revision(revision));
            match leader.propose(command).await {
                Ok(Outcome::Written { .. }) => {
                    successes.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Outcome::ConditionFailed { .. }) => {}
                other => panic!("unexpected answer to an If-Match increment: {other:?}"),
            }
        }
    };
    let tasks: Vec<_> = (0..TASKS).map(|_| increment()).collect();
    // All on this task's futures, so every proposal is concurrent with the others.
    futures_join_all(tasks).await;

    let (value, _) = counter_value(leader, "counter");
    assert_eq!(value as u64, successes.load(Ordering::Relaxed));
    assert!(value > 0);
    let commands = (TASKS * ATTEMPTS) as u64;
    let entries = leader.status().last_log_index.unwrap() - entries_before;
    assert!(
        entries * 4 < commands,
        "{commands} proposals took {entries} log entries: they were not batched"
    );
    for follower in cluster.followers(leader.id()) {
        let index = leader.status().last_log_index.unwrap();
        follower.wait_applied(index, WAIT).await.unwrap();
        assert_eq!(counter_value(follower, "counter").0, value);
    }
    cluster.shutdown().await;
}

/// Polls every future to completion on the current task (no extra crate needed).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in futures.iter_mut() {
            if let Some(future) = slot {
                if future.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_refuse_with_the_leader_and_barriers_make_writes_visible_there() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    let follower = cluster.followers(leader.id()).next().unwrap();
    let leader_addr = leader.member().addr;

    let refused = follower.propose(put("k", 1, Condition::Always)).await;
    assert_eq!(
        refused,
        Err(ProposeError::NotLeader {
            leader: Some((leader.id(), leader_addr.clone()))
        })
    );
    assert!(refused.unwrap_err().is_retryable());
    assert_eq!(
        follower.linearizable_barrier(WAIT).await,
        Err(BarrierError::NotLeader {
            leader: Some((leader.id(), leader_addr.clone()))
        })
    );

    let written = leader.propose(put("k", 7, Condition::Always)).await.unwrap();
    let Outcome::Written { revision, .. } = written else {
        panic!("{written:?}")
    };
    // Concurrent readers share confirmation rounds; every one gets an index covering the write.
    let barriers: Vec<_> = (0..16).map(|_| leader.linearizable_barrier(WAIT)).collect();
    let mut indexes = Vec::new();
    for barrier in barriers {
        indexes.push(barrier.await.unwrap());
    }
    let index = *indexes.iter().min().unwrap();
    assert!(index >= 1);
    follower.wait_applied(index, WAIT).await.unwrap();
    let record = follower
        .state()
        .get("k")
        .unwrap()
        .expect("the write is on the follower");
    assert_eq!(record.revision, revision);

    let status = follower.status();
    assert_eq!(status.state, NodeRole::Follower);
    assert_eq!(
        status.leader.as_ref().map(|l| (l.id, l.addr.clone())),
        Some((leader.id(), leader_addr))
    );
    assert!(status.replication.is_none());

    let status = leader.status();
    assert_eq!(status.state, NodeRole::Leader);
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|m| m.role == MemberRole::Voter));
    let replication = status.replication.expect("the leader reports replication");
    let ids: Vec<NodeId> = replication.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(!ids.contains(&leader.id()));
    let json = serde_json::to_value(leader.status()).unwrap();
    assert_eq!(json["state"], "leader");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_left_in_a_minority_fails_fast_and_acknowledges_nothing() {
    let mut cluster = Cluster::start().await;
    let leader_id = cluster.leader().await.id();
    let leader_at = cluster.nodes.iter().position(|n| n.id() == leader_id).unwrap();
    let leader = cluster.nodes.remove(leader_at);
    for follower in std::mem::take(&mut cluster.nodes) {
        follower.shutdown().await.unwrap();
    }

    let started = Instant::now();
    let answer = loop {
        // Each call is bounded; a hang fails the test here rather than at the global deadline.
        let answer = tokio::time::timeout(WAIT, leader.propose(put("lost", 1, Condition::Always)))
            .await
            .expect("a proposal in a minority must not hang");
        match answer {
            Ok(outcome) => panic!("acknowledged without a quorum: {outcome:?}"),
            // In flight while the quorum vanished: the leader cannot know, and says so.
            Err(ProposeError::Unknown(_)) => {}
            Err(other) => break other,
        }
        assert!(started.elapsed() < support::DEADLINE, "never refused at once");
    };
    assert!(
        matches!(answer, ProposeError::NoQuorum | ProposeError::NotLeader { .. }),
        "{answer:?}"
    );
    // Refused before reaching Raft: certainly not applied, so retrying elsewhere is safe.
    assert!(answer.is_retryable());
    assert!(leader.state().get("lost").unwrap().is_none());
    assert!(leader.linearizable_barrier(WAIT).await.is_err());
    leader.shutdown().await.unwrap();
}
