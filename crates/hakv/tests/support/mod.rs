//! The test kit of every end-to-end test: real processes, real sockets, real faults.
//! - `process`: `hakv serve` (or any subcommand that listens) as a child process;
//! - `cluster`: a Raft cluster of such processes (on loopback, or in network namespaces);
//! - `cli`: `hakv` subcommands run to completion;
//! - `http`: a raw HTTP/1.1 client that shows responses byte for byte;
//! - `clients`: clients that record histories for the linearizability checker;
//! - `eventually`: polls a condition, bounded in time; `metric`: reads one from an exposition;
//! - `hosts`: host names of a test's own (`/etc/hosts`);
//! - faults: `netns` (partitions), `tmpfs` (full disks), `faketime` (clocks), and `nemesis`,
//!   which injects them all on a seeded schedule.
#![allow(dead_code)]

pub mod cli;
pub mod clients;
pub mod cluster;
pub mod faketime;
pub mod hosts;
pub mod http;
pub mod nemesis;
pub mod netns;
pub mod process;
pub mod tmpfs;

#[allow(unused_imports)]
pub use cluster::Cluster;
#[allow(unused_imports)]
pub use http::{Http, Reply};
#[allow(unused_imports)]
pub use netns::Net;
#[allow(unused_imports)]
pub use process::{HakvProcess, ServerProcess};
#[allow(unused_imports)]
pub use tmpfs::Tmpfs;

use std::time::{Duration, Instant};

/// Polls `done` every 50 ms until it holds, for at most `limit` (then fails, naming `what`);
/// returns how long it took.
pub fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// The value of an unlabelled metric in a Prometheus exposition (0 when absent).
pub fn metric(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}
