//! `hakv backup` and `hakv restore` with real processes: a single node and a cluster member
//! backed up online, restored into a new single node and into the first member of a new
//! 3-member cluster, every key and revision intact; a damaged backup is refused.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::cluster::TOKEN;
use support::{Cluster, Http, ServerProcess};

/// Runs `hakv ARGS…`; returns (success, stdout, stderr).
fn hakv(args: &[&str]) -> (bool, String, String) {
    let run = support::cli::run(args);
    (run.code == 0, run.stdout, run.stderr)
}

fn write_keys(http: &mut Http, n: usize) {
    for i in 0..n {
        let body = format!("{{\"value\": {{\"i\": {i}, \"pad\": \"{}\"}}}}", "x".repeat(300));
        assert_eq!(
            http.send_json("PUT", &format!("/data/k{i}"), &body, &[])
                .unwrap()
                .status,
            201
        );
    }
    assert_eq!(http.request("DELETE", "/data/k0", &[], None).unwrap().status, 200);
}

/// Every key's value and revision, as one member answers them.
fn contents(http: &mut Http, n: usize, query: &str) -> Vec<(u16, String, Option<String>)> {
    (0..n)
        .map(|i| {
            let reply = http.get(&format!("/data/k{i}{query}")).unwrap();
            (
                reply.status,
                reply.text(),
                reply.header("etag").map(str::to_string),
            )
        })
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_single_node_round_trips_and_a_damaged_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = ServerProcess::start(&dir.path().join("source"), &[]);
    let mut http = Http::connect(source.addr).unwrap();
    write_keys(&mut http, 200);
    let before = contents(&mut http, 200, "");

    let file = dir.path().join("backup.hakv");
    let url = format!("http://{}", source.addr);
    let (ok, stdout, stderr) = hakv(&["backup", "--target", &url, "--out", path(&file)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backup of revision 201: 199 keys"), "{stdout}");
    let (again, _, stderr) = hakv(&["backup", "--target", &url, "--out", path(&file)]);
    assert!(!again && stderr.contains("exists"), "{stderr}");

    let restored = dir.path().join("restored");
    let (ok, stdout, stderr) = hakv(&["restore", path(&file), "--data-dir", path(&restored)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("restored revision 201 (199 keys)"), "{stdout}");
    let node = ServerProcess::start(&restored, &[]);
    let mut http = Http::connect(node.addr).unwrap();
    assert_eq!(contents(&mut http, 200, ""), before);
    // Revisions go on from the backup's.
    let next = http
        .send_json("PUT", "/data/new", r#"{"value": 1}"#, &[])
        .unwrap();
    assert_eq!(next.revision(), 202);

    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let damaged = dir.path().join("damaged.hakv");
    std::fs::write(&damaged, bytes).unwrap();
    let target = dir.path().join("never");
    let (ok, _, stderr) = hakv(&["restore", path(&damaged), "--data-dir", path(&target)]);
    assert!(!ok && stderr.contains("not a good hakv backup"), "{stderr}");
}

#[test]
fn a_cluster_backup_seeds_a_new_cluster() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["old", "new"] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
    }
    let old = Cluster::start(&dir.path().join("old"), 3, &["--snapshot-every", "50"]);
    let leader = old.leader();
    let mut http = Http::connect(old.member(leader).addr).unwrap();
    write_keys(&mut http, 120);
    let before = contents(&mut http, 120, "");

    // From a follower, which needs the token and reads after a barrier.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let url = format!("http://{}", old.member(follower).addr);
    let file = dir.path().join("cluster.hakv");
    let (ok, _, stderr) = hakv(&["backup", "--target", &url, "--out", path(&file)]);
    assert!(!ok && stderr.contains("401"), "no token: {stderr}");
    let args = [
        "backup",
        "--target",
        &url,
        "--out",
        path(&file),
        "--cluster-token",
        TOKEN,
    ];
    let (ok, stdout, stderr) = hakv(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backup of revision 121: 119 keys"), "{stdout}");
    drop(old);

    let mut new = Cluster::prepare(&dir.path().join("new"), 3, &["--snapshot-every", "50"]);
    let seeded = new.member(1).data_dir.clone();
    let peers = new.peers().to_string();
    let args = [
        "restore",
        path(&file),
        "--data-dir",
        path(&seeded),
        "--node-id",
        "1",
    ];
    let (ok, stdout, stderr) = hakv(&[&args[..], &["--peers", &peers, "--cluster-token", TOKEN]].concat());
    assert!(ok, "{stderr}");
    assert!(stdout.contains("member 1 of a new 3-member cluster"), "{stdout}");
    new.start_all();
    let leader = new.leader();
    let mut http = Http::connect(new.member(leader).addr).unwrap();
    assert_eq!(contents(&mut http, 120, ""), before);
    // Every member holds the restored data (sent to the empty ones as a snapshot).
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in 1..=3 {
        let mut member = Http::connect(new.member(id).addr).unwrap();
        while member.get("/ready").unwrap().status != 200 {
            assert!(Instant::now() < deadline, "member {id} never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            contents(&mut member, 120, "?consistency=stale"),
            before,
            "member {id}"
        );
    }
    let next = http
        .send_json("PUT", "/data/new", r#"{"value": 1}"#, &[])
        .unwrap();
    assert_eq!(next.revision(), 122);
}
