//! The TLS flags of every command that calls a node or a balancer: which CA to trust for
//! `https://` URLs, and a client certificate for servers that require one (mutual TLS).
//! Their ids differ from their flag names: client commands have a positional KEY.

use hakv_tls::{ClientTls, ClientTlsFiles};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// CA certificate (PEM) that an https:// server's certificate must chain to [default:
    /// the system's trust roots].
    #[arg(long = "ca", id = "tls_ca", env = "HAKV_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that require one (mutual TLS).
    #[arg(
        long = "cert",
        id = "tls_cert",
        env = "HAKV_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(
        long = "key",
        id = "tls_key",
        env = "HAKV_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    /// The client configuration these flags name; `None` when none is given (https URLs are
    /// then checked against the system's roots).
    pub fn load(&self) -> Result<Option<ClientTls>, hakv_tls::TlsError> {
        if self.ca.is_none() && self.cert.is_none() {
            return Ok(None);
        }
        ClientTls::load(ClientTlsFiles {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        })
        .map(Some)
    }
}
