//! Clients that record what they did: threads that keep writing and reading a few keys
//! through the members of a cluster, every request in a `History` for the linearizability
//! checker in `crates/testkit`.

use super::{Cluster, Http};
use hakv_testkit::{CheckOptions, Condition, History, Op, OpResult};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A larger search budget than the default: a key here sees up to ~1000 operations with many
/// unknown outcomes around each kill.
pub const CHECK: CheckOptions = CheckOptions {
    step_budget_per_key: 20_000_000,
};

/// Operations one client makes before it works on fresh keys: a key's history stays short
/// enough for the checker however long a run lasts.
const OPS_PER_KEY_SET: u64 = 3_000;

/// One client: a thread that keeps writing and reading a few keys through one member,
/// recording every request in `history`, until `stop` or `max_ops`.
fn client(
    cluster_addrs: Vec<std::net::SocketAddr>,
    client: u64,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    max_ops: u64,
) {
    let mut target = client as usize % cluster_addrs.len();
    let mut http: Option<Http> = None;
    for i in 0..max_ops {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let set = i / OPS_PER_KEY_SET;
        let base = match i % 3 {
            0 => format!("own-{client}"),
            1 => "shared-a".to_string(),
            _ => "shared-b".to_string(),
        };
        let key = &if set == 0 { base } else { format!("{base}-{set}") };
        let op = match i % 4 {
            0 | 2 => Op::Put {
                value: json!(format!("c{client}-{i}")),
            },
            1 => Op::Get,
            _ => Op::PutIf {
                value: json!(i),
                condition: Condition::Absent,
            },
        };
        let connection = match &mut http {
            Some(h) => h,
            None => match Http::connect_with_timeout(cluster_addrs[target], Duration::from_secs(3)) {
                Ok(h) => http.insert(h),
                Err(_) => {
                    // This member is down: use another one.
                    target = (target + 1) % cluster_addrs.len();
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        let id = history.invoke(client, key.clone(), op.clone());
        let path = format!("/data/{key}");
        let reply = match &op {
            Op::Get => connection.get(&path),
            Op::Put { value } => {
                connection.send_json("PUT", &path, &json!({ "value": value }).to_string(), &[])
            }
            Op::PutIf { value, .. } => connection.send_json(
                "PUT",
                &path,
                &json!({ "value": value }).to_string(),
                &[("If-None-Match", "*")],
            ),
            _ => unreachable!(),
        };
        match reply {
            Ok(reply) => {
                let result = OpResult::from_http(&op, reply.status, reply.header("etag"), &reply.body);
                if reply.status >= 500 {
                    // Maybe this member is cut off: spread over the others.
                    target = (target + 1) % cluster_addrs.len();
                    http = None;
                    std::thread::sleep(Duration::from_millis(10));
                }
                history.complete(id, result);
            }
            Err(_) => {
                history.complete(id, OpResult::Unknown);
                http = None;
                target = (target + 1) % cluster_addrs.len();
            }
        }
    }
}

/// The history did real work: many acknowledged writes and reads, so the check means something.
pub fn assert_progress(history: &History, min_writes: usize, min_reads: usize) {
    let ops = history.operations();
    let acknowledged = ops
        .iter()
        .filter(|o| matches!(o.result, OpResult::Ok { .. }))
        .count();
    let reads = ops
        .iter()
        .filter(|o| matches!(o.result, OpResult::Found { .. }))
        .count();
    let unknown = ops
        .iter()
        .filter(|o| matches!(o.result, OpResult::Unknown))
        .count();
    eprintln!(
        "history: {} operations, {acknowledged} acknowledged writes, {reads} reads found, {unknown} unknown",
        ops.len()
    );
    assert!(
        acknowledged >= min_writes && reads >= min_reads,
        "too little progress to judge: {acknowledged} writes, {reads} reads"
    );
}

/// `n` clients, each starting on its own member, at most 5000 operations each.
pub fn run_clients(
    cluster: &Cluster,
    n: u64,
    history: &Arc<History>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    run_clients_bounded(cluster, n, history, stop, 5_000)
}

/// [`run_clients`] with another bound on each client's operations.
pub fn run_clients_bounded(
    cluster: &Cluster,
    n: u64,
    history: &Arc<History>,
    stop: &Arc<AtomicBool>,
    max_ops: u64,
) -> Vec<std::thread::JoinHandle<()>> {
    let addrs: Vec<_> = cluster.members.iter().map(|m| m.addr).collect();
    (1..=n)
        .map(|c| {
            let (addrs, history, stop) = (addrs.clone(), history.clone(), stop.clone());
            std::thread::spawn(move || client(addrs, c, history, stop, max_ops))
        })
        .collect()
}

/// Clients running against a cluster, all recording into one history.
pub struct Load {
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// `n` clients, each starting on its own member, at most 5000 operations each.
    pub fn start(cluster: &Cluster, n: u64) -> Load {
        Load::start_bounded(cluster, n, 5_000)
    }

    /// [`start`](Self::start) with another bound on each client's operations.
    pub fn start_bounded(cluster: &Cluster, n: u64, max_ops: u64) -> Load {
        let history = Arc::new(History::new());
        let stop = Arc::new(AtomicBool::new(false));
        let clients = run_clients_bounded(cluster, n, &history, &stop, max_ops);
        Load {
            history,
            stop,
            clients,
        }
    }

    /// Stops the clients (each finishes its request in flight) and returns their history.
    pub fn stop(self) -> Arc<History> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().unwrap();
        }
        self.history
    }
}

/// The history did real work (see [`assert_progress`]) and is linearizable.
pub fn assert_linearizable(history: &History, min_writes: usize, min_reads: usize) {
    assert_progress(history, min_writes, min_reads);
    let report = hakv_testkit::check_with(history, &CHECK);
    assert!(report.is_linearizable(), "{report}");
}
