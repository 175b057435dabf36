//! Why a bench run could not start (failed requests are not errors: they go in the report).

/// A run that cannot begin.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid --target {url}: {reason}")]
    InvalidTarget { url: String, reason: String },
}
