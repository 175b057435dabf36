//! Clocks that disagree, for real: each member runs under libfaketime (Debian package
//! `faketime`, installed by `.ci/run`) with an offset read from a file, so a test can skew one
//! member's wall clock or step it back while it runs.
//!
//! A single node's clock stepped back an hour brings no expired key back, and its TTLs go on
//! expiring on time (time keeps running by the monotonic clock).
//!
//! Time in a cluster is the leader's: it stamps every write, whichever member received it,
//! and every member judges expiry by the time the log carries (`docs/api.md`, TTL). So:
//! - a member 10 minutes ahead neither expires a key early nor decides a precondition by its
//!   own clock;
//! - a key expires once, on every member at the same point, and never comes back;
//! - the leader's clock stepped back an hour brings no expired key back and does not stop
//!   time: a new TTL still expires on time.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::faketime::{faketime_env, libfaketime, set_offset};
use support::{Cluster, Http, ServerProcess};

/// GETs `key` every 20 ms until it is gone (bounded); returns how long that took.
fn until_gone(http: &mut Http, key: &str) -> Duration {
    let started = Instant::now();
    while http.get(&format!("/data/{key}")).unwrap().status == 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "{key} never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn a_single_nodes_clock_stepped_back_brings_nothing_back_and_stops_no_ttl() {
    let lib = libfaketime();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    set_offset(&file, "+0");
    let env = faketime_env(&lib, &file);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start_with_env(&dir.path().join("node"), &[], &env);
    let mut http = Http::connect(server.addr).unwrap();
    let ttl = r#"{"value": 1, "ttl_seconds": 1}"#;
    assert_eq!(http.send_json("PUT", "/data/w", ttl, &[]).unwrap().status, 201);
    until_gone(&mut http, "w");
    set_offset(&file, "-3600");
    std::thread::sleep(Duration::from_millis(1_500)); // libfaketime rereads its file each second
    for _ in 0..5 {
        assert_eq!(http.get("/data/w").unwrap().status, 404, "w came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http.send_json("PUT", "/data/v", ttl, &[]).unwrap().status, 201);
    let expired = until_gone(&mut http, "v");
    assert!(
        expired < Duration::from_secs(5),
        "v took {expired:?} to expire after the clock was stepped back"
    );
    assert_eq!(
        http.send_json("PUT", "/data/w", r#"{"value": 2}"#, &[("If-None-Match", "*")])
            .unwrap()
            .status,
        201,
        "an expired key is absent to preconditions"
    );
}

fn status(cluster: &Cluster, id: u64, key: &str) -> u16 {
    Http::connect(cluster.member(id).addr)
        .unwrap()
        .get(&format!("/data/{key}"))
        .unwrap()
        .status
}

fn put(cluster: &Cluster, id: u64, key: &str, body: &str, headers: &[(&str, &str)]) -> u16 {
    Http::connect(cluster.member(id).addr)
        .unwrap()
        .send_json("PUT", &format!("/data/{key}"), body, headers)
        .unwrap()
        .status
}

/// Reads `key` on every member until the leader no longer has it; checks that no member
/// returns it after any member stopped returning it. Returns how long that took.
fn watch_expiry(cluster: &Cluster, leader: u64, key: &str) -> Duration {
    let started = Instant::now();
    let mut gone_on = Vec::new();
    loop {
        for id in 1..=3 {
            match status(cluster, id, key) {
                200 => assert!(
                    gone_on.is_empty(),
                    "{key} came back on member {id} after it expired on {gone_on:?}"
                ),
                404 => {
                    if !gone_on.contains(&id) {
                        gone_on.push(id);
                    }
                }
                other => panic!("GET {key} on {id}: {other}"),
            }
        }
        if gone_on.contains(&leader) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{key} never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    let expired = started.elapsed();
    // Gone on every member from now on.
    for _ in 0..10 {
        for id in 1..=3 {
            assert_eq!(
                status(cluster, id, key),
                404,
                "{key} on member {id} after it expired"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    expired
}

#[test]
fn a_ttl_key_expires_once_on_every_member_at_the_leaders_time() {
    let lib = libfaketime();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::prepare(dir.path(), 3, &[]);
    let clock_files: Vec<PathBuf> = (1..=3).map(|id| dir.path().join(format!("clock-{id}"))).collect();
    for (i, file) in clock_files.iter().enumerate() {
        set_offset(file, "+0");
        cluster.member_mut(i as u64 + 1).env = faketime_env(&lib, file);
    }
    // Member 3 is ten minutes ahead, and joins once 1 and 2 have a leader, so that it follows.
    set_offset(&clock_files[2], "+600");
    cluster.start_member(1);
    cluster.start_member(2);
    let leader = cluster.leader();
    cluster.start_member(3);
    assert_eq!(cluster.leader(), leader);

    // Written through the member ahead: stamped by the leader, alive everywhere.
    let ttl = r#"{"value": 1, "ttl_seconds": 2}"#;
    assert_eq!(put(&cluster, 3, "t", ttl, &[]), 201);
    let written = Instant::now();
    assert_eq!(
        put(&cluster, 3, "u", r#"{"value": 1, "ttl_seconds": 60}"#, &[]),
        201
    );
    for id in 1..=3 {
        assert_eq!(status(&cluster, id, "t"), 200, "t on member {id}");
    }
    // A precondition sent to the member ahead agrees with the reads: "u" exists.
    assert_eq!(
        put(&cluster, 3, "u", r#"{"value": 2}"#, &[("If-None-Match", "*")]),
        412
    );

    let watched_from = written.elapsed();
    let after = watched_from + watch_expiry(&cluster, leader, "t");
    // (`written` is taken after the answer, a little after the leader stamped the write.)
    assert!(
        after >= Duration::from_millis(1_900),
        "t expired after {after:?}, before its TTL"
    );
    eprintln!("t expired {after:?} after it was written");
    // Expired means absent to preconditions too, on any member.
    assert_eq!(
        put(&cluster, 3, "t", r#"{"value": 2}"#, &[("If-None-Match", "*")]),
        201
    );

    // The leader's clock is stepped back an hour: nothing expired comes back, and time
    // goes on (a new TTL expires on time, not an hour late).
    assert_eq!(
        put(&cluster, leader, "w", r#"{"value": 1, "ttl_seconds": 1}"#, &[]),
        201
    );
    watch_expiry(&cluster, leader, "w");
    set_offset(&clock_files[leader as usize - 1], "-3600");
    std::thread::sleep(Duration::from_millis(1_500)); // libfaketime rereads its file each second
    for id in 1..=3 {
        assert_eq!(status(&cluster, id, "w"), 404, "w came back on member {id}");
    }
    assert_eq!(put(&cluster, leader, "v", ttl, &[]), 201);
    let expired = watch_expiry(&cluster, leader, "v");
    assert!(
        expired < Duration::from_secs(10),
        "v took {expired:?} to expire after the clock was stepped back"
    );
    assert_eq!(cluster.leader(), leader);
}
