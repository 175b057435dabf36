//! TLS for every hakv listener and client, with rustls (no OpenSSL): certificates and keys
//! from PEM files, mutual TLS as an option, and a reload (SIGHUP) that swaps certificates for
//! new connections while the open ones go on.
//!
//! One certificate per process serves both directions: a member presents it to clients and
//! peers, and presents it again as its client certificate when it calls a peer that asks for
//! one (mutual TLS). Certificates made by [`generate`] carry both uses.

mod client;
mod error;
mod files;
#[cfg(feature = "generate")]
pub mod generate;
mod server;

pub use client::{ClientTls, ClientTlsFiles, Connector, connector};
pub use error::TlsError;
/// For callers that drive their own connections (`hakv bench`).
pub use rustls::pki_types::ServerName;
pub use server::{ServerTls, ServerTlsFiles, accept};
pub use tokio_rustls::TlsConnector;

/// The crypto provider every config uses: ring (C and assembly built by `cc`, no cmake).
/// rustls deprecates it because it lacks post-quantum key exchange, which only its aws-lc-rs
/// provider has, and that one needs cmake to build (the design rules cmake out).
#[allow(deprecated)]
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
