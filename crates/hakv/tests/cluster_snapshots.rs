//! Snapshot transfers with real processes: a member killed while it receives a streamed
//! snapshot starts over after a restart and catches up, with nothing half-received left.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Cluster, Http};

/// Files of `dir` whose names start with `prefix`, with their sizes.
fn files_named(dir: &Path, prefix: &str) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let len = entry.metadata().ok()?.len();
            name.starts_with(prefix).then_some((name, len))
        })
        .collect()
}

fn caught_up(data_dir: &Path) -> bool {
    std::fs::read_to_string(data_dir.join("identity.json"))
        .is_ok_and(|text| text.contains("\"caught_up\": true"))
}

#[test]
fn a_member_killed_while_receiving_a_snapshot_catches_up_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshots often, sent slowly (256 KiB/s): a ~1.6 MB snapshot takes seconds to arrive.
    // More writes than the 1000 entries a leader keeps behind its snapshot (and the quarter
    // of the snapshot's size the policy waits for after it), so the wiped member cannot be
    // served from the log.
    let extra = ["--snapshot-every", "50", "--snapshot-rate", "256KiB"];
    let mut cluster = Cluster::start(dir.path(), 3, &extra);
    let leader = cluster.leader();
    let victim = (1..=3).find(|id| *id != leader).unwrap();
    let data_dir = cluster.member(victim).data_dir.clone();
    cluster.kill(victim);
    cluster.wipe(victim);
    let mut http = Http::connect(cluster.member(leader).addr).unwrap();
    let value = "v".repeat(1000);
    for i in 0..1600 {
        let body = format!("{{\"value\": \"{value}-{i}\"}}");
        assert_eq!(
            http.send_json("PUT", &format!("/data/k{i}"), &body, &[])
                .unwrap()
                .status,
            201
        );
    }

    // Once the leader has purged its log past the wiped member's position (a few entries),
    // only a snapshot can bring that member back (otherwise it could catch up from the log,
    // and no transfer would ever start). The leader keeps 1000 entries behind its snapshot.
    support::eventually(
        "the leader's log is purged past index 100",
        Duration::from_secs(30),
        || {
            let status = Http::connect(cluster.member(leader).addr)
                .and_then(|mut http| http.get("/cluster"))
                .map(|reply| reply.json());
            status.is_ok_and(|s| s["purged_index"].as_u64().is_some_and(|index| index >= 100))
        },
    );
    // A transfer is paced (`--snapshot-rate`) only while the sender serves clients; with none,
    // it would be over in milliseconds. A client keeps reading until the test is done.
    let leader_addr = cluster.member(leader).addr;
    let reading = Arc::new(AtomicBool::new(true));
    let reader = {
        let reading = reading.clone();
        std::thread::spawn(move || {
            let mut http = Http::connect(leader_addr).unwrap();
            while reading.load(Ordering::Relaxed) {
                let _ = http.get("/data/k0?consistency=stale");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    cluster.start_member(victim);
    let snapshots = data_dir.join("snapshot");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !files_named(&snapshots, "incoming-")
        .iter()
        .any(|(_, len)| *len > 0)
    {
        assert!(Instant::now() < deadline, "no snapshot transfer started");
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.kill(victim); // in the middle of the transfer
    assert!(!caught_up(&data_dir), "the transfer was already over");

    cluster.start_member(victim);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut member = Http::connect(cluster.member(victim).addr).unwrap();
    while !(caught_up(&data_dir) && member.get("/ready").unwrap().status == 200) {
        assert!(
            Instant::now() < deadline,
            "the member never caught up after its restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        files_named(&snapshots, "incoming-"),
        [],
        "a half-received snapshot was left"
    );
    reading.store(false, Ordering::Relaxed);
    reader.join().unwrap();
    for i in [0, 800, 1599] {
        let reply = member.get(&format!("/data/k{i}?consistency=stale")).unwrap();
        assert_eq!(reply.json()["data"], format!("{value}-{i}"), "key k{i}");
    }
}
