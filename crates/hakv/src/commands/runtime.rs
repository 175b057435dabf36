//! What every long-running subcommand shares: logging setup and the shutdown signal.

/// The filter when `HAKV_LOG` and `RUST_LOG` are unset: `info`, the storage engine's and
/// openraft's chatter at `warn`.
const DEFAULT_FILTER: &str = "info,fjall=warn,lsm_tree=warn,openraft=warn";

/// Logs to stderr (in colour only on a terminal); `HAKV_LOG` (or `RUST_LOG`) sets the filter.
/// A filter that names no level (`HAKV_LOG=verbose`, which `tracing` would take as a target
/// and so log nothing else) is refused with a warning, and the default is used.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let given = std::env::var("HAKV_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let filter = match given {
        Some(filter) if is_level_filter(&filter) => filter,
        Some(filter) => {
            eprintln!(
                "hakv: HAKV_LOG={filter:?} is not a log filter (use a level: error, warn, info, \
                 debug, trace, off; or TARGET=LEVEL, comma-separated): logging at the default"
            );
            DEFAULT_FILTER.to_owned()
        }
        None => DEFAULT_FILTER.to_owned(),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Whether every comma-separated directive is a level or `target=level`.
fn is_level_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    !filter.trim().is_empty()
        && filter.split(',').all(|directive| {
            let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
            LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
        })
}

/// Completes on the first Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received Ctrl-C"),
        _ = terminate => tracing::info!("received SIGTERM"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_filters_that_name_levels_are_taken() {
        for good in ["info", "debug,fjall=warn", "hakv_raft=trace", "WARN", "off"] {
            assert!(is_level_filter(good), "{good}");
        }
        for bad in ["verbose", "", "info,chatty", "hakv_raft=loud"] {
            assert!(!is_level_filter(bad), "{bad}");
        }
    }
}
