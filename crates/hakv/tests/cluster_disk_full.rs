//! A full disk in a 3-member cluster, each member's data directory on a tmpfs of its own:
//! - a follower's disk fills: it takes no entries, writes go on through the other two, the
//!   term does not change, and the follower catches up once space is freed;
//! - the leader's disk fills: writes get 507 `disk_full` (also when sent to a follower, and the
//!   leader's log names the forwarded request's id), reads go on, `/ready` says why, and writes
//!   resume by themselves once space is freed.
//!
//! Mounting a tmpfs needs root (CI runs as root); elsewhere the test says so and does nothing.

mod support;

use std::time::Duration;
use support::{Cluster, Http, Tmpfs, eventually};

const RESERVE: u64 = 8 << 20;

fn put(cluster: &Cluster, id: u64, key: &str) -> u16 {
    let mut http = Http::connect_with_timeout(cluster.member(id).addr, Duration::from_secs(15)).unwrap();
    let reply = http
        .send_json("PUT", &format!("/data/{key}"), "{\"value\":\"x\"}", &[])
        .expect("an answer within the timeout: a write must never hang");
    if reply.status == 507 {
        assert_eq!(reply.code(), "disk_full", "{}", reply.text());
    }
    reply.status
}

fn status(cluster: &Cluster, id: u64) -> serde_json::Value {
    Http::connect(cluster.member(id).addr)
        .unwrap()
        .get("/cluster")
        .unwrap()
        .json()
}

#[test]
fn a_full_disk_on_a_follower_or_the_leader_refuses_writes_safely_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::prepare(dir.path(), 3, &["--disk-reserve", "8MiB"]);
    let mut disks = Vec::new();
    for member in &cluster.members {
        match Tmpfs::mount(&member.data_dir, "64m") {
            Some(disk) => disks.push(disk),
            None => {
                eprintln!("skipped: mounting a tmpfs needs root");
                return;
            }
        }
    }
    cluster.start_all();
    let leader = cluster.leader();
    let term = status(&cluster, leader)["term"].as_u64().unwrap();
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (full, other) = (followers[0], followers[1]);

    // A follower's disk fills: the other two go on.
    disks[full as usize - 1].fill_leaving(RESERVE / 2);
    for i in 0..200 {
        // A 504 (outcome unknown: the leader briefly lost its standing, seen once under a
        // loaded CI machine) is retried with the same idempotent write; it must then succeed.
        let key = format!("a{i}");
        let mut answer = put(&cluster, leader, &key);
        for _ in 0..3 {
            if answer != 504 {
                break;
            }
            eprintln!("{key}: 504, retried");
            std::thread::sleep(Duration::from_millis(200));
            answer = put(&cluster, leader, &key);
        }
        assert!(answer == 201 || answer == 200, "{key}: {answer}");
    }
    let refused = Http::connect(cluster.member(full).addr)
        .unwrap()
        .get("/metrics")
        .unwrap()
        .text();
    assert!(refused.contains("hakv_disk_writes_refused 1"), "{refused}");
    let lagging = |cluster: &Cluster| {
        let s = status(cluster, full);
        s["applied_index"].as_u64() < status(cluster, leader)["commit_index"].as_u64()
    };
    assert!(lagging(&cluster), "the full follower took no entries");
    disks[full as usize - 1].free();
    let caught_up = eventually(
        "the follower catches up after space is freed",
        Duration::from_secs(10),
        || !lagging(&cluster),
    );
    eprintln!("follower caught up {caught_up:?} after space was freed");

    // The leader's disk fills: writes are refused wherever they are sent; reads go on.
    disks[leader as usize - 1].fill_leaving(RESERVE / 2);
    eventually("the leader refuses writes", Duration::from_secs(5), || {
        put(&cluster, leader, "b-probe") == 507
    });
    assert_eq!(put(&cluster, other, "b-forwarded"), 507);
    // The client's request id went along with the forwarded write: the leader's log line about
    // the refusal names it.
    let mut http = Http::connect(cluster.member(other).addr).unwrap();
    let refused = http
        .send_json(
            "PUT",
            "/data/b-traced",
            "{\"value\":\"x\"}",
            &[("X-Request-Id", "traced-through-forwarding")],
        )
        .unwrap();
    assert_eq!(refused.status, 507, "{}", refused.text());
    let leader_log = cluster.member(leader).data_dir.with_extension("log");
    eventually(
        "the leader logs the forwarded write's id",
        Duration::from_secs(5),
        || {
            std::fs::read_to_string(&leader_log).is_ok_and(|log| {
                log.lines()
                    .any(|l| l.contains("forwarded write failed") && l.contains("traced-through-forwarding"))
            })
        },
    );
    let mut http = Http::connect(cluster.member(leader).addr).unwrap();
    assert_eq!(http.get("/data/a199").unwrap().status, 200);
    let ready = http.get("/ready").unwrap();
    assert_eq!(ready.status, 200);
    assert!(ready.text().contains("disk is nearly full"), "{}", ready.text());
    disks[leader as usize - 1].free();
    let resumed = eventually(
        "writes resume after space is freed",
        Duration::from_secs(5),
        || put(&cluster, other, "b-after") == 201,
    );
    eprintln!("writes resumed {resumed:?} after the leader's space was freed");

    // Nothing changed leadership, and every member has what was acknowledged.
    assert_eq!(cluster.leader(), leader);
    assert_eq!(
        status(&cluster, leader)["term"].as_u64().unwrap(),
        term,
        "the term changed"
    );
    for id in 1..=3 {
        let mut http = Http::connect(cluster.member(id).addr).unwrap();
        for key in ["a0", "a199", "b-after"] {
            assert_eq!(
                http.get(&format!("/data/{key}")).unwrap().status,
                200,
                "{key} on {id}"
            );
        }
    }
    drop(cluster); // the members stop before their filesystems are unmounted
}
