//! One hakv node: configuration, the HTTP API over the durable store and its read cache,
//! metrics, limits and graceful shutdown. `app()` builds the router (testable without a
//! socket); `run()` serves it on a listener until shutdown.

mod auth;
mod cache_hook;
mod cluster;
mod config;
mod error;
mod expiry_task;
mod exposition;
mod key;
mod limits;
mod node;
mod observability;
mod request_body;
mod request_metrics;
mod routes;
mod runtime_lag;
mod scan_budget;
mod server;
mod tls;
mod units;
mod write_body;

#[cfg(test)]
mod parser_properties;

pub use config::{ConfigError, Peer, ServeArgs, ServeConfig, parse_peers};
pub use error::ApiError;
pub use node::{Node, NodeError};
pub use routes::app;
pub use server::{ServeError, run};
