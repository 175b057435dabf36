//! What can go wrong loading TLS material, named with the file it came from.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("{path} holds no {what}")]
    Empty { path: PathBuf, what: &'static str },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    #[error("the CA certificates do not make a verifier: {0}")]
    Verifier(String),
    #[error("{0}")]
    Incomplete(&'static str),
}
