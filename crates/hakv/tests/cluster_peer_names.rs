//! Peers named by host name: the name is what the cluster records, and it is looked up at each
//! new connection, so a member that comes back at another IP under the same name (as a
//! rescheduled pod or a recreated container does) is reached again. The names are the test's
//! own, in `/etc/hosts` (root only: otherwise the test says so and passes).

mod support;

use std::time::Duration;
use support::hosts::TestHosts;
use support::{Cluster, Http, eventually};

#[test]
fn a_member_back_at_another_ip_under_its_name_is_reached_again() {
    let Some(hosts) = TestHosts::new() else {
        eprintln!("skipped: /etc/hosts is not writable (run as root)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::prepare(dir.path(), 3, &[]);
    let names: Vec<String> = (1..=3).map(|id| hosts.name(&format!("member-{id}"))).collect();
    let entries = |moved: Option<(usize, &'static str)>| -> Vec<(String, &'static str)> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| match moved {
                Some((j, ip)) if i == j => (name.clone(), ip),
                _ => (name.clone(), "127.0.0.1"),
            })
            .collect()
    };
    let set = |list: Vec<(String, &str)>| {
        hosts.set(&list.iter().map(|(n, ip)| (n.as_str(), *ip)).collect::<Vec<_>>());
    };
    set(entries(None));
    cluster.name_peers(|id| names[id as usize - 1].clone());
    cluster.start_all();

    let leader = cluster.leader();
    let mut status = Http::connect(cluster.member(leader).addr).unwrap();
    let members = status.get("/cluster").unwrap().json()["members"].clone();
    let recorded: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["addr"].as_str().unwrap())
        .collect();
    assert!(
        recorded.iter().all(|addr| addr.starts_with("hakv-test-")),
        "{recorded:?}"
    );

    // A follower goes away and comes back at 127.0.0.2, under the same name and port.
    let moved = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(moved);
    set(entries(Some((moved as usize - 1, "127.0.0.2"))));
    let port = cluster.member(moved).addr.port();
    cluster.member_mut(moved).addr = format!("127.0.0.2:{port}").parse().unwrap();
    cluster.start_member(moved);

    let mut http = Http::connect(cluster.member(leader).addr).unwrap();
    let put = http
        .send_json("PUT", "/data/after-the-move", r#"{"value": 1}"#, &[])
        .unwrap();
    assert_eq!(put.status, 201);
    let mut member = Http::connect(cluster.member(moved).addr).unwrap();
    eventually(
        "the moved member replicates the leader's writes",
        Duration::from_secs(20),
        || {
            member
                .get("/data/after-the-move?consistency=stale")
                .is_ok_and(|reply| reply.status == 200)
        },
    );
}
