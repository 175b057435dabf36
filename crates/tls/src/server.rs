//! The listener side: a certificate to present, optionally a CA whose client certificates are
//! required (mutual TLS), reloaded from the same files on request.

use crate::{TlsError, files, provider};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where a listener's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The certificate chain to present (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// When set, every connection must present a client certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// A listener's TLS configuration; [`ServerTls::reload`] re-reads its files.
pub struct ServerTls {
    files: ServerTlsFiles,
    acceptor: RwLock<TlsAcceptor>,
}

impl ServerTls {
    pub fn load(files: ServerTlsFiles) -> Result<ServerTls, TlsError> {
        let acceptor = RwLock::new(TlsAcceptor::from(server_config(&files)?));
        Ok(ServerTls { files, acceptor })
    }

    /// Re-reads the files; on success new connections get the new certificates (open ones
    /// keep theirs), on failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = TlsAcceptor::from(server_config(&self.files)?);
        *self.acceptor.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The configuration for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True when clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }
}

fn server_config(files: &ServerTlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = files::certificates(&files.cert)?;
    let key = files::private_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(files::roots(ca)?, provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// What a client that spoke plain HTTP to a TLS port is told before the connection closes.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 90\r\n\r\n\
{\"code\":\"tls_required\",\"error\":\"this port speaks TLS: use https:// and the cluster's CA\"}\n";

/// Completes the TLS handshake of an accepted connection. A client that sends plain HTTP
/// instead gets a 400 that says to use https, and the connection ends with an error.
pub async fn accept(acceptor: TlsAcceptor, mut stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let peeked = stream.peek(&mut first).await?;
    if peeked == 1 && first[0] != TLS_HANDSHAKE && first[0].is_ascii_alphabetic() {
        let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
        let _ = stream.shutdown().await;
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "plain HTTP sent to a TLS port",
        ));
    }
    acceptor.accept(stream).await
}

#[cfg(test)]
mod tests {
    use super::PLAIN_HTTP_ANSWER;

    #[test]
    fn the_plain_http_answer_has_the_length_it_declares() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(body.ends_with('\n'));
    }
}
