//! A node's TLS: the certificate its listener presents, and how it calls its peers; both
//! re-read from their files on SIGHUP, without dropping a connection.

use crate::ServeConfig;
use hakv_tls::{ClientTls, ServerTls, TlsError};
use std::sync::Arc;

/// What a node loaded at start; empty when it speaks plain HTTP.
#[derive(Clone, Default)]
pub struct NodeTls {
    pub listener: Option<Arc<ServerTls>>,
    /// For calls to peers, which speak TLS when this node does.
    pub peers: Option<ClientTls>,
}

impl NodeTls {
    pub fn load(config: &ServeConfig) -> Result<NodeTls, TlsError> {
        let listener = config
            .server_tls_files()
            .map(ServerTls::load)
            .transpose()?
            .map(Arc::new);
        let peers = match config.peer_tls_files() {
            Some(files) if config.is_clustered() => Some(ClientTls::load(files)?),
            _ => None,
        };
        Ok(NodeTls { listener, peers })
    }

    /// Re-reads every file; logs what happened. The listener's and the peers' files are
    /// loaded apart: a bad file leaves the configuration it belongs to as it was.
    pub fn reload(&self) {
        if self.listener.is_none() {
            tracing::info!("SIGHUP: this node speaks plain HTTP, nothing to reload");
            return;
        }
        let listener = self.listener.as_ref().map_or(Ok(()), |tls| tls.reload());
        let peers = self.peers.as_ref().map_or(Ok(()), |tls| tls.reload());
        match listener.and(peers) {
            Ok(()) => {
                metrics::counter!("hakv_tls_reloads_total", "result" => "ok").increment(1);
                tracing::info!("SIGHUP: TLS certificates reloaded; new connections use them");
            }
            Err(error) => {
                metrics::counter!("hakv_tls_reloads_total", "result" => "error").increment(1);
                tracing::warn!(%error, "SIGHUP: TLS reload failed; what did not load stays as it was");
            }
        }
    }
}
