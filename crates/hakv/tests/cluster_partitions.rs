//! Network partitions, for real: each member of a 3-member cluster in a network namespace of
//! its own, links cut with nftables (`support::netns`), while clients record histories that
//! the linearizability checker reads. Root only (CI runs as root); elsewhere the tests say so
//! and do nothing.

mod support;

use std::time::{Duration, Instant};
use support::clients::{Load, assert_linearizable};
use support::{Cluster, Http, Net};

/// The tests here judge elections: they run one at a time, so that two clusters and their
/// clients do not share the two cores (a starved leader is legitimately replaced).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// 3 members, each in a network namespace of its own, and 3 clients recording a history;
/// `None` where namespaces cannot be made (not root).
fn cluster_in_namespaces() -> Option<(Net, tempfile::TempDir, Cluster, Load)> {
    let net = Net::create(3)?;
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::prepare_in(&net, dir.path(), 3, &[]);
    cluster.start_all();
    let load = Load::start(&cluster, 3);
    Some((net, dir, cluster, load))
}

fn cluster_status(cluster: &Cluster, id: u64) -> Option<serde_json::Value> {
    let mut http = Http::connect_with_timeout(cluster.member(id).addr, Duration::from_secs(2)).ok()?;
    serde_json::from_slice(&http.get("/cluster").ok()?.body).ok()
}

fn term(cluster: &Cluster, id: u64) -> u64 {
    cluster_status(cluster, id).unwrap()["term"].as_u64().unwrap()
}

/// The highest term any member reports.
fn max_term(cluster: &Cluster) -> u64 {
    (1..=3)
        .filter_map(|id| cluster_status(cluster, id))
        .filter_map(|s| s["term"].as_u64())
        .max()
        .unwrap()
}

#[test]
fn a_leader_cut_off_from_the_majority_is_replaced_and_nothing_acknowledged_is_lost() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((net, _dir, cluster, load)) = cluster_in_namespaces() else {
        eprintln!("skipped: network namespaces need root, ip and nft");
        return;
    };
    std::thread::sleep(Duration::from_millis(500));

    let old = cluster.leader();
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    net.isolate(old as u32);
    let cut = Instant::now();
    // The old leader acknowledges no linearizable read from now on (and no write can
    // commit); the majority elects a new leader.
    let mut probe = Http::connect_with_timeout(cluster.member(old).addr, Duration::from_secs(15)).unwrap();
    let mut last_read_ok = None;
    // Watched on a thread of its own: a read on the old leader may wait for an answer a while.
    let elected = std::thread::scope(|scope| {
        let watch = scope.spawn(|| {
            while cut.elapsed() < Duration::from_secs(3) {
                if others
                    .iter()
                    .any(|id| cluster.leader_seen_by(*id).is_some_and(|l| l != old))
                {
                    return Some(cut.elapsed());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            None
        });
        while cut.elapsed() < Duration::from_secs(3) {
            match probe.get("/data/shared-a") {
                Ok(r) if r.status == 200 || r.status == 404 => last_read_ok = Some(cut.elapsed()),
                Ok(_) => {}
                Err(_) => {
                    probe =
                        Http::connect_with_timeout(cluster.member(old).addr, Duration::from_secs(15)).unwrap()
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        watch.join().unwrap()
    });
    assert!(
        last_read_ok.is_none_or(|at| at < Duration::from_millis(150)),
        "the cut-off leader answered a linearizable read {last_read_ok:?} after the cut"
    );
    let elected = elected.expect("the majority elected no new leader within 3 s");
    eprintln!("a new leader {elected:?} after the old leader {old} was cut off");
    net.heal();
    let healed = Instant::now();
    // Everyone converges on one leader, the old one a follower again.
    loop {
        let views: Vec<Option<u64>> = (1..=3).map(|id| cluster.leader_seen_by(id)).collect();
        if views.iter().all(|v| v.is_some() && *v == views[0]) {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(5),
            "no single leader 5 s after the heal: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("converged {:?} after the heal", healed.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let history = load.stop();
    assert_linearizable(&history, 30, 15);
}

#[test]
fn one_way_and_flapping_links_cause_no_term_storm() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((net, _dir, cluster, load)) = cluster_in_namespaces() else {
        eprintln!("skipped: network namespaces need root, ip and nft");
        return;
    };
    std::thread::sleep(Duration::from_millis(300));
    let leader = cluster.leader();
    let term_before = term(&cluster, leader);
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();

    // One way: the leader's messages reach the followers, their answers never come back.
    for f in &followers {
        net.cut(*f as u32, leader as u32);
    }
    std::thread::sleep(Duration::from_secs(3));
    net.heal();
    std::thread::sleep(Duration::from_secs(1));
    let after_one_way = max_term(&cluster);

    // Flapping: one follower's link to the leader goes down and up every 200 ms for 4 s.
    let leader = cluster.leader();
    let flapping = (1..=3).find(|id| *id != leader).unwrap();
    for _ in 0..10 {
        net.cut(flapping as u32, leader as u32);
        net.cut(leader as u32, flapping as u32);
        std::thread::sleep(Duration::from_millis(200));
        net.heal();
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let after_flapping = max_term(&cluster);
    eprintln!(
        "terms: {term_before} before, {after_one_way} after the one-way cut, {after_flapping} after flapping"
    );
    // Over TCP a one-way cut is a cut: no connection can be set up either way, and the
    // followers, hearing nothing, elect a new leader once (the old one could commit nothing).
    // Flapping faster than the stall timeout costs no election at all. Neither is a storm.
    assert!(
        after_one_way <= term_before + 1,
        "the one-way cut raised the term from {term_before} to {after_one_way}"
    );
    assert_eq!(after_flapping, after_one_way, "flapping links changed the term");

    let history = load.stop();
    assert_linearizable(&history, 30, 15);
}
