//! How the balancer reaches its backends: plain HTTP, or https checked against the configured
//! CA, presenting a client certificate to backends that require one.

use crate::config::TlsConfig;
use hakv_tls::{ClientTls, Connector, TlsError};
use http::uri::Scheme;
use hyper_util::client::legacy::connect::HttpConnector;

/// Shared by the proxy, health checks and the leader tracker; a reload reaches them all.
#[derive(Clone, Default)]
pub struct BackendTransport {
    tls: Option<ClientTls>,
}

impl BackendTransport {
    pub fn load(config: &TlsConfig) -> Result<BackendTransport, TlsError> {
        let tls = config.backend_files().map(ClientTls::load).transpose()?;
        Ok(BackendTransport { tls })
    }

    pub fn scheme(&self) -> Scheme {
        if self.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }

    pub fn scheme_str(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// `http` (with its timeouts and socket options) wrapped for this transport.
    pub fn connector(&self, http: HttpConnector) -> Connector {
        hakv_tls::connector(http, self.tls.as_ref())
    }

    /// Re-reads the CA and client certificate, if any.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.tls.as_ref().map_or(Ok(()), ClientTls::reload)
    }
}
