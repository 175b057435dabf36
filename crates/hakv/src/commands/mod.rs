//! Subcommands of the `hakv` binary; each one is a thin shell over a library crate.

mod backup;
mod balance;
mod bench;
mod client;
mod cluster;
pub mod runtime;
mod serve;

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run one node: the key-value HTTP API over a durable store.
    Serve(serve::ServeCommand),
    /// Run the HTTP load balancer in front of a set of nodes.
    Balance(balance::BalanceCommand),
    /// Load-test a hakv (or seed-compatible) endpoint and report QPS, latency and availability.
    Bench(bench::BenchCommand),
    /// Run a local cluster (members and a balancer) as child processes.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Stream a consistent snapshot of a node (any cluster member) to a file, and check it.
    Backup(backup::BackupCommand),
    /// Seed a new single node, or the first member of a new cluster, from a backup file.
    Restore(backup::RestoreCommand),
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// Runs a subcommand to completion and turns its outcome into the process exit code.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(cmd) => serve::run(cmd),
        Command::Balance(cmd) => balance::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::Backup(cmd) => backup::backup(cmd),
        Command::Restore(cmd) => backup::restore(cmd),
        Command::Client(cmd) => client::run(cmd),
    }
}
