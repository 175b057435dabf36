//! The one hakv binary: parses the command line and hands off to the library crates.

mod commands;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// hakv: a highly available, high-throughput key-value service.
#[derive(Debug, Parser)]
#[command(name = "hakv", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

/// The whole command-line definition (for completions and man pages).
fn cli() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::run(cli.command)
}
