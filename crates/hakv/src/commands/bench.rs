//! `hakv bench`: runs the load generator of `hakv-bench` and prints its report.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BenchCommand {
    #[command(flatten)]
    config: hakv_bench::BenchConfig,
    /// Print the final report as JSON on stdout (for scripts).
    #[arg(long, env = "HAKV_BENCH_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// No live progress line on stderr.
    #[arg(long, short = 'q', env = "HAKV_BENCH_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
    quiet: bool,
}

/// 0 when a report was printed (whatever the errors in it), 2 when the run could not start.
pub fn run(cmd: BenchCommand) -> ExitCode {
    let runtime = if cmd.config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cmd.config.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hakv bench: cannot start the runtime: {e}");
            return ExitCode::from(4);
        }
    };
    let quiet = cmd.quiet;
    let result = runtime.block_on(hakv_bench::run(&cmd.config, ctrl_c(), |progress| {
        if !quiet {
            eprintln!("{progress}");
        }
    }));
    match result {
        Ok(report) if cmd.json => match serde_json::to_string_pretty(&report) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hakv bench: cannot encode the report: {e}");
                ExitCode::from(4)
            }
        },
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hakv bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Resolves on Ctrl-C; never, if the handler cannot be installed (the run then ends by its bounds).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
