//! Read replicas and reads on followers, with real processes on loopback: a learner added with
//! `"learner": true` serves stale and linearizable reads, never campaigns when the leader dies,
//! and is promoted on request; adding or promoting the wrong member is a clear error; and a
//! follower's concurrent linearizable reads share read-index requests to the leader.

mod support;

use serde_json::json;
use std::time::Duration;
use support::cluster::TOKEN;
use support::{Cluster, Http, eventually, metric};

const AUTH: &str = "Bearer test-cluster-secret";

/// The leader as the running voters (members 1–3) see it, once they agree.
fn voters_leader(cluster: &Cluster) -> u64 {
    let mut leader = None;
    eventually("the voters agree on a leader", Duration::from_secs(30), || {
        let running = cluster.running();
        let views: Vec<_> = running
            .iter()
            .filter(|id| **id <= 3)
            .map(|id| cluster.leader_seen_by(*id))
            .collect();
        leader = views[0].filter(|l| views.iter().all(|v| *v == Some(*l)) && running.contains(l));
        leader.is_some()
    });
    leader.unwrap()
}

/// A request (with the cluster token) to the leader; returns status, error code and body.
fn on_leader(
    cluster: &Cluster,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, serde_json::Value) {
    let leader = voters_leader(cluster);
    let mut http = Http::connect(cluster.member(leader).addr).unwrap();
    let reply = http
        .request(method, path, &[("Authorization", AUTH)], body.map(str::as_bytes))
        .unwrap();
    let body = serde_json::from_slice(&reply.body).unwrap_or_default();
    (reply.status, reply.code(), body)
}

/// Member `id`'s role and state as the leader's `/cluster` lists it.
fn role_of(cluster: &Cluster, id: u64) -> String {
    let (_, _, status) = on_leader(cluster, "GET", "/cluster", None);
    let members = status["members"].as_array().unwrap().clone();
    let member = members.iter().find(|m| m["id"] == id);
    member.map_or("none".into(), |m| m["role"].as_str().unwrap().to_owned())
}

fn get(cluster: &Cluster, id: u64, path: &str) -> (u16, serde_json::Value) {
    let reply = Http::connect(cluster.member(id).addr).unwrap().get(path).unwrap();
    (
        reply.status,
        serde_json::from_slice(&reply.body).unwrap_or_default(),
    )
}

#[test]
fn a_read_replica_serves_reads_never_campaigns_and_is_promoted_on_request() {
    assert_eq!(AUTH, format!("Bearer {TOKEN}"));
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &[]);
    cluster.create_via_leader("before", "1");

    let replica = cluster.prepare_joiner(dir.path());
    cluster.start_member(replica);
    let body = json!({"id": replica, "addr": cluster.member(replica).addr.to_string(), "learner": true});
    let (status, code, _) = on_leader(&cluster, "POST", "/cluster/members", Some(&body.to_string()));
    assert_eq!((status, code.as_str()), (200, ""), "added as a read replica");
    assert_eq!(role_of(&cluster, replica), "learner");
    let (status, code, answer) = on_leader(&cluster, "POST", "/cluster/members", Some(&body.to_string()));
    assert_eq!((status, code.as_str()), (409, "already_member"), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("learner"), "{answer}");

    // It serves what was written before it joined, and a linearizable read sees a write
    // acknowledged a moment before, at once.
    assert_eq!(
        get(&cluster, replica, "/data/before?consistency=stale").1["data"],
        json!(1)
    );
    let mut http = Http::connect(cluster.member(voters_leader(&cluster)).addr).unwrap();
    for i in 0..20 {
        let body = json!({"value": i}).to_string();
        assert!(http.send_json("PUT", "/data/after", &body, &[]).unwrap().status < 300);
        let (status, read) = get(&cluster, replica, "/data/after");
        assert_eq!(
            (status, &read["data"]),
            (200, &json!(i)),
            "linearizable read on the replica"
        );
    }

    // The leader dies: a voter takes over, the replica never campaigns.
    let old_leader = voters_leader(&cluster);
    cluster.kill(old_leader);
    let new_leader = cluster.leader(); // the replica included
    assert_ne!(new_leader, replica, "a learner never leads");
    let (_, view) = get(&cluster, replica, "/cluster");
    assert_eq!(view["state"], "learner", "{view}");
    let term = view["term"].as_u64().unwrap();
    let (_, leaders_view) = get(&cluster, new_leader, "/cluster");
    assert_eq!(
        leaders_view["term"].as_u64(),
        Some(term),
        "the replica follows the new term, raising none"
    );
    cluster.start_member(old_leader);
    cluster.leader();

    // Promotion: unknown ids and voters are refused; the replica becomes a voter.
    let (status, code, _) = on_leader(&cluster, "POST", "/cluster/members/9/promote", None);
    assert_eq!((status, code.as_str()), (404, "not_member"));
    let voter = if new_leader == 1 { 2 } else { 1 };
    let (status, code, _) = on_leader(
        &cluster,
        "POST",
        &format!("/cluster/members/{voter}/promote"),
        None,
    );
    assert_eq!((status, code.as_str()), (409, "already_member"));
    let (status, code, _) = on_leader(
        &cluster,
        "POST",
        &format!("/cluster/members/{replica}/promote"),
        None,
    );
    assert_eq!((status, code.as_str()), (200, ""), "promoted");
    assert_eq!(role_of(&cluster, replica), "voter");
}

#[test]
fn a_followers_concurrent_linearizable_reads_share_read_index_requests() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    let (leader, _) = cluster.create_via_leader("k", "0");
    let follower = if leader == 1 { 2 } else { 1 };

    const READERS: u64 = 16;
    const READS: u64 = 40;
    let addr = cluster.member(follower).addr;
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut http = Http::connect(addr).unwrap();
                for _ in 0..READS {
                    let reply = http.get("/data/k").unwrap();
                    assert_eq!(reply.status, 200, "{}", reply.text());
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().unwrap();
    }
    let mut requests = 0.0;
    eventually(
        "the follower's metrics count every read",
        Duration::from_secs(5),
        || {
            let exposition = get_text(&cluster, follower, "/metrics");
            requests = metric(&exposition, "hakv_cluster_read_index_requests_total");
            metric(&exposition, "hakv_cluster_forwarded_reads_total") == (READERS * READS) as f64
        },
    );
    assert!(
        requests >= 1.0 && requests < (READERS * READS) as f64,
        "{requests} read-index requests for {} reads",
        READERS * READS
    );
}

fn get_text(cluster: &Cluster, id: u64, path: &str) -> String {
    Http::connect(cluster.member(id).addr)
        .unwrap()
        .get(path)
        .unwrap()
        .text()
}
