//! `hakv balance`: the HTTP load balancer. Parses flags, builds the runtime, binds, and handles
//! signals (SIGTERM/Ctrl-C drain and stop, SIGHUP reloads `--config`); the rest is in
//! `hakv-balancer`.

use anyhow::Context;
use hakv_balancer::{BalanceArgs, Balancer};
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BalanceCommand {
    #[command(flatten)]
    args: BalanceArgs,
    #[command(flatten)]
    log: super::runtime::LogArgs,
}

pub fn run(cmd: BalanceCommand) -> ExitCode {
    super::runtime::init_tracing(cmd.log.log_format);
    // A bad setting exits 2, as `hakv serve` does (a failure while running exits 1).
    if let Err(e) = cmd.args.to_config() {
        eprintln!("hakv balance: {}", super::runtime::error_chain(&e.into()));
        return ExitCode::from(2);
    }
    match serve(cmd.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hakv balance: {}", super::runtime::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn serve(args: BalanceArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    // One worker thread is a current-thread runtime: no work stealing or cross-thread wakeups,
    // which is what a balancer pinned to one core wants.
    let runtime = match config.threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        0 => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("cannot start the runtime")?;
    let scheme = if config.tls.cert.is_some() {
        "https"
    } else {
        "http"
    };
    runtime.block_on(async move {
        let balancer = Balancer::new(config)?;
        let handle = balancer.clone().spawn().await?;
        // Handlers first: a signal right after the listening line must not kill the process.
        let mut signals = Signals::install()?;
        // The stdout line scripts and tests wait for (same shape as `hakv serve`), then where
        // the admin API is (never on the proxy port).
        println!("listening on {scheme}://{}", handle.addr);
        println!("admin on http://{}", handle.admin_addr);
        let _ = std::io::stdout().flush();
        tracing::info!(addr = %handle.addr, admin = ?handle.admin_addr, "balancing");
        signals.serve(&args, &balancer).await;
        tracing::info!("draining");
        handle.shutdown().await?;
        Ok(())
    })
}

/// The balancer's signal handlers: SIGTERM and Ctrl-C stop it, SIGHUP reloads `--config`.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            hangup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
        })
    }

    /// Returns on SIGTERM or Ctrl-C; reloads the configuration on each SIGHUP.
    async fn serve(&mut self, args: &BalanceArgs, balancer: &Balancer) {
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => return,
                _ = self.terminate.recv() => return,
                _ = self.hangup.recv() => {
                    // A bad file is logged and ignored: the running configuration stays.
                    match args.to_config().and_then(|c| balancer.reload(&c)) {
                        Ok(()) => {}
                        Err(e) => tracing::error!("reload refused: {e}"),
                    }
                }
            }
        }
    }
}
