//! `hakv balance`: an HTTP load balancer with pluggable selection algorithms, active health
//! checks, passive outlier ejection, budgeted retries, load shedding and runtime reconfiguration.
//!
//! The hot path is plain hyper (server connection + pooled legacy client); the backend set is an
//! immutable snapshot swapped whole through `ArcSwap`, so selecting a backend never takes a lock
//! on the set.

pub mod admin;
pub mod algorithm;
pub mod args;
pub mod backend;
pub mod body;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod headers;
pub mod health;
pub mod independent;
pub mod leader;
pub mod metrics;
pub mod outlier;
pub mod pool;
pub mod proxy;
pub mod retry;
pub mod server;
pub mod transport;

pub use algorithm::Algorithm;
pub use args::BalanceArgs;
pub use backend::Backend;
pub use clock::{Clock, RandomSource, SplitMix64, SystemClock};
pub use config::{BackendSpec, BalancerConfig, ConfigError};
pub use server::{Balancer, BalancerHandle, ServeError};
