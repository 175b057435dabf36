//! `hakv get|put|delete|scan|status` (placeholder until the client crate lands).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Read one key.
    Get { key: String },
}

pub fn run(_cmd: ClientCommand) -> ExitCode {
    eprintln!("hakv client commands: not built yet");
    ExitCode::FAILURE
}
