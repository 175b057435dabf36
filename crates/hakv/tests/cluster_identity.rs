//! Member identity with real processes: a member whose data was wiped rejoins under load
//! without an election or a failed request, and a data directory is refused to another node
//! id or another cluster.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::cluster::TOKEN;
use support::{Cluster, Http};

fn term_seen_by(cluster: &Cluster, id: u64) -> u64 {
    let mut http = Http::connect(cluster.member(id).addr).unwrap();
    http.get("/cluster").unwrap().json()["term"].as_u64().unwrap()
}

fn caught_up(data_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(data_dir.join("identity.json")) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["caught_up"] == true
}

#[test]
fn a_wiped_member_rejoins_under_load_without_an_election() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshot often, so the wiped member is sent a snapshot, not the log.
    let mut cluster = Cluster::start(dir.path(), 3, &["--snapshot-every", "50"]);
    let leader = cluster.leader();
    let terms: Vec<u64> = (1..=3).map(|id| term_seen_by(&cluster, id)).collect();
    let victim = (1..=3).find(|id| *id != leader).unwrap();

    // Writes through the leader for the whole rejoin; every one must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let (written, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (stop, written, failed) = (stop.clone(), written.clone(), failed.clone());
        let addr = cluster.member(leader).addr;
        std::thread::spawn(move || {
            let mut http = Http::connect(addr).unwrap();
            for i in 0..100_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = format!("{{\"value\": {i}}}");
                match http.send_json("PUT", &format!("/data/k{}", i % 500), &body, &[]) {
                    Ok(reply) if reply.status < 300 => written.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    while written.load(Ordering::Relaxed) < 300 {
        std::thread::sleep(Duration::from_millis(10));
    }
    cluster.kill(victim);
    cluster.wipe(victim);
    std::thread::sleep(Duration::from_millis(500)); // longer than an election timeout
    cluster.start_member(victim);

    let deadline = Instant::now() + Duration::from_secs(60);
    while !caught_up(&cluster.member(victim).data_dir) {
        assert!(Instant::now() < deadline, "the wiped member never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut member = Http::connect(cluster.member(victim).addr).unwrap();
    while member.get("/ready").unwrap().status != 200 {
        assert!(Instant::now() < deadline, "the wiped member never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "writes failed during the rejoin"
    );
    let after: Vec<u64> = (1..=3).map(|id| term_seen_by(&cluster, id)).collect();
    assert_eq!(after, terms, "the term changed: an election happened");
    assert_eq!(cluster.leader(), leader);
    // The rejoined member answers linearizable reads with the latest write.
    let last = written.load(Ordering::Relaxed) - 1;
    let mut http = Http::connect(cluster.member(leader).addr).unwrap();
    let key = format!("/data/k{}", last % 500);
    let expected = http.get(&key).unwrap().json()["data"].clone();
    assert_eq!(member.get(&key).unwrap().json()["data"], expected);
}

/// Runs `hakv serve` with `args` and returns its exit status and stderr, killing it if it
/// has not exited within 20 s.
fn serve_until_exit(args: &[&str], data_dir: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hakv"))
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_data_directory_is_refused_to_another_node_and_to_another_cluster() {
    let dir = tempfile::tempdir().unwrap();
    for cluster in ["a", "b"] {
        std::fs::create_dir(dir.path().join(cluster)).unwrap();
    }
    let mut first = Cluster::start(&dir.path().join("a"), 3, &[]);
    first.stop(2);
    let data_dir = first.member(2).data_dir.clone();
    let own_addr = first.member(2).addr.to_string();

    // Another cluster, with the same secret: its member answers with another cluster id.
    let second = Cluster::start(&dir.path().join("b"), 1, &[]);
    let cases = [
        (
            "3",
            format!("2={own_addr},3={}", first.member(3).addr),
            "belongs to node 2, not node 3",
        ),
        (
            "2",
            format!("1={},2={own_addr}", second.member(1).addr),
            "belongs to cluster",
        ),
    ];
    for (node_id, peers, refusal) in cases {
        let args = ["--listen", &own_addr, "--node-id", node_id, "--peers", &peers];
        let (code, stderr) = serve_until_exit(&[&args[..], &["--cluster-token", TOKEN]].concat(), &data_dir);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(refusal), "{stderr}");
    }
}
