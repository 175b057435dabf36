//! `hakv completions SHELL` and `hakv man --out DIR`: shell completions and man pages,
//! generated from the same clap definitions that parse the command line, so they never
//! drift from it (packagers run them at build time).

use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CompletionsCommand {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManCommand {
    /// Directory to write the pages into (created if missing): hakv.1 and one page per
    /// subcommand (hakv-serve.1, hakv-cluster-up.1, …).
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

/// Prints the completion script for `cmd.shell` on standard output.
pub fn completions(cmd: CompletionsCommand, mut cli: clap::Command) -> ExitCode {
    let name = cli.get_name().to_string();
    clap_complete::generate(cmd.shell, &mut cli, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Writes a man page for `cli` and for every subcommand under it.
pub fn man_pages(cmd: ManCommand, cli: clap::Command) -> ExitCode {
    let written = std::fs::create_dir_all(&cmd.out).and_then(|()| write_pages(&cmd.out, cli, ""));
    match written {
        Ok(count) => {
            println!("wrote {count} man pages to {}", cmd.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: writing man pages to {}: {e}", cmd.out.display());
            ExitCode::FAILURE
        }
    }
}

/// One page for `cli` (named after its parents: `hakv-cluster-up`), then its subcommands'.
fn write_pages(dir: &Path, cli: clap::Command, parent: &str) -> std::io::Result<usize> {
    let name = match parent {
        "" => cli.get_name().to_string(),
        parent => format!("{parent}-{}", cli.get_name()),
    };
    let cli = cli.name(name.clone()).display_name(name.clone());
    let mut page = Vec::new();
    clap_mangen::Man::new(cli.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    let mut count = 1;
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        count += write_pages(dir, sub.clone(), &name)?;
    }
    Ok(count)
}
