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

/// The log index the snapshot in `data_dir` covers (its file's meta header: a 4-byte length,
/// then openraft's `SnapshotMeta` as JSON).
fn snapshot_index(data_dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(data_dir.join("snapshot/current")).ok()?;
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let meta: serde_json::Value = serde_json::from_slice(bytes.get(4..4 + len)?).ok()?;
    meta["last_log_id"]["index"].as_u64()
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

    // The leader keeps 1000 entries behind its snapshot: once its snapshot covers 1100, the
    // wiped member's log position (a few entries) is gone from the leader's log and only a
    // snapshot can bring it back (otherwise it could catch up from the log, and no transfer
    // would ever start).
    let leader_dir = cluster.member(leader).data_dir.clone();
    support::eventually(
        "the leader's snapshot covers index 1100",
        Duration::from_secs(30),
        || snapshot_index(&leader_dir).is_some_and(|index| index >= 1100),
    );
    std::thread::sleep(Duration::from_millis(500)); // the purge follows the build
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
