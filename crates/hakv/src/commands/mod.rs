//! Subcommands of the `hakv` binary; each one is a thin shell over a library crate.

mod backup;
mod balance;
mod bench;
mod client;
mod cluster;
mod cluster_status;
mod cluster_tls;
mod generate;
mod http_call;
pub mod runtime;
mod serve;
mod tls_args;
mod token;

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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(generate::CompletionsCommand),
    /// Write man pages for hakv and every subcommand into a directory.
    Man(generate::ManCommand),
}

/// Runs a subcommand to completion and turns its outcome into the process exit code.
pub fn run(command: Command) -> ExitCode {
    if matches!(command, Command::Bench(_) | Command::Client(_)) {
        quiet_on_closed_pipe();
    }
    match command {
        Command::Serve(cmd) => serve::run(cmd),
        Command::Balance(cmd) => balance::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::Backup(cmd) => backup::backup(cmd),
        Command::Restore(cmd) => backup::restore(cmd),
        Command::Client(cmd) => client::run(cmd),
        Command::Completions(cmd) => generate::completions(cmd, crate::cli()),
        Command::Man(cmd) => generate::man_pages(cmd, crate::cli()),
    }
}

/// Commands whose output is read by other programs end quietly when the reader goes away
/// (`hakv scan | head -1`), like other Unix tools: the default action of SIGPIPE, which Rust
/// turns off (a write to a closed pipe then fails, and `println!` panics). Servers keep it
/// off: a client closing its socket must not kill them.
fn quiet_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
