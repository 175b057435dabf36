//! `hakv serve`: one node on a listener until SIGTERM or Ctrl-C.

use super::runtime::{LogArgs, init_tracing, shutdown_signal};
use hakv_server::{ServeArgs, ServeConfig};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeCommand {
    #[command(flatten)]
    args: ServeArgs,
    #[command(flatten)]
    log: LogArgs,
}

pub fn run(cmd: ServeCommand) -> ExitCode {
    init_tracing(cmd.log.log_format);
    let config = match ServeConfig::load(&cmd.args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hakv serve: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hakv serve: {}", super::runtime::error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let shutdown = shutdown_signal();
    tracing::info!(%addr, data_dir = %config.data_dir.display(), cache = %config.cache_policy, "hakv serve starting");
    // Scripts and tests read this line to learn the port (`--listen 127.0.0.1:0`); it comes
    // once the store is open, so a node that cannot open its data never claims to listen.
    hakv_server::run(listener, config, shutdown, || {
        println!("listening on {scheme}://{addr}")
    })
    .await?;
    Ok(())
}
