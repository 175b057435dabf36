//! What every long-running subcommand shares: logging setup and the shutdown signal.

/// The filter when `HAKV_LOG` and `RUST_LOG` are unset: `info`, the storage engine's and
/// openraft's chatter at `warn`, and openraft's per-call replication errors off (three lines
/// per failed append, 20 a second while a follower is down; hakv logs a peer's trouble once
/// per 10 s itself, and counts every failure in `hakv_raft_peer_rpc_errors_total`).
const DEFAULT_FILTER: &str = "info,fjall=warn,lsm_tree=warn,openraft=warn,\
                              openraft::replication=off,openraft::engine::handler::replication_handler=off";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`, and the spans'
    /// fields), for log shippers such as Filebeat, Fluent Bit or Promtail.
    Json,
}

/// The logging flags of the long-running subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "HAKV_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Logs to stderr, as text (in colour only on a terminal) or JSON lines; `HAKV_LOG` (or
/// `RUST_LOG`) sets the filter. A filter that names no level (`HAKV_LOG=verbose`, which
/// `tracing` would take as a target and so log nothing else) is refused with a warning, and
/// the default is used.
pub fn init_tracing(format: LogFormat) {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// An error and its causes on one line, each said once. Many error types here put their
/// source in their own message as well as exposing it as the source, so `{:#}` printed
/// `cannot open the store: engine error: Locked: engine error: Locked: Locked`.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

/// Completes on the first Ctrl-C (SIGINT) or SIGTERM. The handlers are in place when this
/// returns (not only once the future is first polled), so a signal that arrives right after a
/// server said it listens still shuts it down cleanly instead of killing it. Call it inside
/// the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let received = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = received(interrupt) => tracing::info!("received Ctrl-C"),
                _ = received(terminate) => tracing::info!("received SIGTERM"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("received Ctrl-C");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_says_each_cause_once() {
        /// Says its source in its own message and exposes it as the source too.
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot open the store: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = std::io::Error::other("locked");
        let err = anyhow::Error::new(Outer(inner)).context("hakv serve");
        assert_eq!(error_chain(&err), "hakv serve: cannot open the store: locked");
    }

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
