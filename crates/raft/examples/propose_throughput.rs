//! Write throughput of a 3-node in-process cluster at 32 concurrent proposers: unbatched
//! `client_write` of one-command batches (one log entry, one fsync per command: the baseline)
//! against `RaftNode::propose` (group commit into shared entries), alternated in one run.
//!
//!     cargo run --release -p hakv-raft --example propose_throughput [seconds_per_phase]

use hakv_api::to_canonical_json;
use hakv_raft::{Batch, NodeId, RaftNode, RaftNodeConfig};
use hakv_store::{Command, Condition, NoHook, Op};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const PROPOSERS: usize = 32;
const ROUNDS: usize = 2;

fn put(key: String, value: u64) -> Command {
    Command {
        at_ms: 1_000,
        op: Op::Put {
            key,
            value: to_canonical_json(&value),
            ttl_ms: None,
            condition: Condition::Always,
        },
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Unbatched,
    Propose,
}

/// Runs `PROPOSERS` writers against the leader for `phase`; returns (writes/s, log entries).
async fn phase(leader: &Arc<RaftNode>, mode: Mode, phase: Duration) -> (f64, u64) {
    let entries_before = leader.status().last_log_index.unwrap_or(0);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + phase;
    let started = Instant::now();
    let tasks: Vec<_> = (0..PROPOSERS)
        .map(|task| {
            let (leader, done) = (leader.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let command = put(format!("k{task}-{}", i % 1000), i);
                    let ok = match mode {
                        Mode::Unbatched => leader.raft().client_write(Batch::one(command)).await.is_ok(),
                        Mode::Propose => leader.propose(command).await.is_ok(),
                    };
                    assert!(ok, "a write failed on a healthy cluster");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let entries = leader.status().last_log_index.unwrap_or(0) - entries_before;
    (done.load(Ordering::Relaxed) as f64 / elapsed, entries)
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = RaftNodeConfig::new(i as NodeId + 1, dir.path().to_path_buf(), "bench".into());
        nodes.push(Arc::new(
            RaftNode::start(config, listener, Arc::new(NoHook)).await.unwrap(),
        ));
    }
    let members: BTreeMap<NodeId, _> = nodes.iter().map(|n| (n.id(), n.member())).collect();
    nodes[0].initialize(members).await.unwrap();
    let started = Instant::now();
    let leader = loop {
        if let Some(leader) = nodes.iter().find(|n| n.leader_has_quorum()) {
            break leader.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no leader");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let phase_time = Duration::from_secs(seconds);
    println!("3 nodes in-process, {PROPOSERS} proposers, {seconds} s per phase");
    let mut totals = [0.0f64; 2];
    for round in 1..=ROUNDS {
        for (slot, mode, name) in [
            (0, Mode::Unbatched, "client_write x1"),
            (1, Mode::Propose, "propose"),
        ] {
            let (rate, entries) = phase(&leader, mode, phase_time).await;
            totals[slot] += rate;
            let per_entry = rate * phase_time.as_secs_f64() / entries.max(1) as f64;
            println!(
                "round {round} {name:>16}: {rate:>9.0} writes/s, {entries:>6} entries, {per_entry:>6.1} commands/entry"
            );
        }
    }
    println!(
        "mean: unbatched {:.0}/s, propose {:.0}/s, ratio {:.1}x",
        totals[0] / ROUNDS as f64,
        totals[1] / ROUNDS as f64,
        totals[1] / totals[0]
    );
    drop(leader);
    for node in nodes {
        Arc::into_inner(node).unwrap().shutdown().await.unwrap();
    }
}
