//! `hakv balance` (placeholder until its crate lands).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BalanceCommand {}

pub fn run(_cmd: BalanceCommand) -> ExitCode {
    eprintln!("hakv balance: not built yet");
    ExitCode::FAILURE
}
