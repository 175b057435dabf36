//! `hakv bench` (placeholder until its crate lands).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BenchCommand {}

pub fn run(_cmd: BenchCommand) -> ExitCode {
    eprintln!("hakv bench: not built yet");
    ExitCode::FAILURE
}
