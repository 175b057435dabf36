//! A seeded nemesis against a 3-member cluster of real processes, each member in a network
//! namespace of its own, on a tmpfs of its own and under libfaketime, while 3 clients write,
//! create and read, recording a history. At the end every fault is healed, each client reads
//! every key it used once more, and the whole history must be linearizable: an acknowledged
//! write that was lost, or a read that contradicts one, fails the test.
//!
//! CI runs 60 s with seed 1; `bench/nemesis.sh` runs it longer:
//! `HAKV_NEMESIS_SECS=1800 HAKV_NEMESIS_SEED=7 cargo test --release --test nemesis -- --nocapture`.
//! Root only (network namespaces, tmpfs); elsewhere the test says so and does nothing.

mod support;

use hakv_testkit::{History, Op, OpResult, check_with};
use std::path::PathBuf;
use std::time::Duration;
use support::clients::{CHECK, Load, assert_progress};
use support::faketime::{faketime_env, libfaketime, set_offset};
use support::nemesis::Nemesis;
use support::{Cluster, Http, Net, Tmpfs};

const DISK_RESERVE: u64 = 16 << 20;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Windows longer than 200 ms in which no operation succeeded, from the clients' start until
/// `until_ns` (when they were stopped): a window still open at the end counts too.
fn unavailability(history: &History, until_ns: u64) -> Vec<Duration> {
    let mut done: Vec<u64> = history
        .operations()
        .iter()
        .filter(|o| !matches!(o.result, OpResult::Unknown | OpResult::Failed))
        .filter_map(|o| o.complete_ns)
        .collect();
    done.push(0);
    done.push(until_ns);
    done.sort_unstable();
    done.windows(2)
        .map(|w| Duration::from_nanos(w[1] - w[0]))
        .filter(|gap| *gap > Duration::from_millis(200))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Every key the history touched, read once more (linearizably) through `member`.
fn final_reads(cluster: &Cluster, member: u64, history: &History) {
    let mut keys: Vec<String> = history.operations().into_iter().map(|o| o.key).collect();
    keys.sort();
    keys.dedup();
    let mut http = Http::connect(cluster.member(member).addr).unwrap();
    for key in keys {
        let id = history.invoke(0, key.clone(), Op::Get);
        let reply = http.get(&format!("/data/{key}")).unwrap();
        let result = OpResult::from_http(&Op::Get, reply.status, reply.header("etag"), &reply.body);
        assert!(
            !matches!(result, OpResult::Failed | OpResult::Unknown),
            "final read of {key}: {}",
            reply.status
        );
        history.complete(id, result);
    }
}

#[test]
fn a_seeded_nemesis_loses_no_acknowledged_write_and_stays_linearizable() {
    let Some(net) = Net::create(3) else {
        eprintln!("skipped: the nemesis needs root (network namespaces, tmpfs), ip and nft");
        return;
    };
    let (secs, seed) = (setting("HAKV_NEMESIS_SECS", 60), setting("HAKV_NEMESIS_SEED", 1));
    let lib = libfaketime();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::prepare_in(&net, dir.path(), 3, &["--disk-reserve", "16MiB"]);
    let mut disks = Vec::new();
    let mut clocks: Vec<PathBuf> = Vec::new();
    for id in 1..=3u64 {
        let member = cluster.member_mut(id);
        disks.push(Tmpfs::mount(&member.data_dir, "256m").expect("root can mount a tmpfs"));
        let clock = dir.path().join(format!("clock-{id}"));
        set_offset(&clock, "+0");
        member.env = faketime_env(&lib, &clock);
        clocks.push(clock);
    }
    cluster.start_all();
    // The count bound is far above what a client reaches in `secs` (about 700 operations a
    // second in a release build), so the clients run until the nemesis ends.
    let load = Load::start_bounded(&cluster, 3, secs * 5_000);

    let mut nemesis = Nemesis::new(&mut cluster, &net, &disks, &clocks, DISK_RESERVE, seed);
    nemesis.run(Duration::from_secs(secs));
    let schedule = nemesis.to_string();
    let counts = nemesis.counts();
    eprintln!("{schedule}");

    // All healed: one leader again, then the clients stop and every key is read once more.
    let leader = cluster.leader();
    std::thread::sleep(Duration::from_secs(1));
    let history = load.stop();
    // Measured before the final reads, which come after a pause of their own.
    let mut gaps = unavailability(&history, history.now_ns());
    gaps.sort_unstable();
    final_reads(&cluster, leader, &history);

    let ops = history.operations();
    eprintln!(
        "nemesis seed {seed}, {secs} s: faults {counts:?}; {} operations; {} windows > 200 ms \
         without a successful operation: p50 {:?}, p99 {:?}, max {:?}",
        ops.len(),
        gaps.len(),
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.99),
        gaps.last().copied().unwrap_or_default()
    );
    assert_progress(&history, 100, 50);
    let report = check_with(&history, &CHECK);
    assert!(report.is_linearizable(), "{schedule}\n{report}");
    eprintln!(
        "linearizable: yes ({} operations checked)",
        report.operations_checked()
    );
    drop(cluster); // members stop before their filesystems are unmounted
}
