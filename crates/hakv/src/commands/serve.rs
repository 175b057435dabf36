//! `hakv serve` (placeholder until the server crate lands).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeCommand {}

pub fn run(_cmd: ServeCommand) -> ExitCode {
    eprintln!("hakv serve: not built yet");
    ExitCode::FAILURE
}
