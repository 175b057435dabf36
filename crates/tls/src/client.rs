//! The calling side: which CA to trust, which certificate to present when a server asks for
//! one, and a hyper connector that speaks TLS to `https://` URLs and plain TCP to `http://`.
//!
//! Both the trust roots and the client certificate sit behind locks of their own, so a reload
//! reaches every pooled client built from this configuration without rebuilding any of them.

use crate::{TlsError, files, provider};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

/// Where a client's TLS material lives; everything is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// CA certificates that servers' certificates must chain to; the system's roots if unset.
    pub ca: Option<PathBuf>,
    /// A certificate (PEM, leaf first) to present to servers that require one.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
}

/// A client TLS configuration that [`ClientTls::reload`] refreshes in place.
#[derive(Clone)]
pub struct ClientTls {
    files: ClientTlsFiles,
    verifier: Arc<Verifier>,
    identity: Arc<Identity>,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    pub fn load(files: ClientTlsFiles) -> Result<ClientTls, TlsError> {
        let verifier = Arc::new(Verifier(RwLock::new(web_pki_verifier(&files)?)));
        let identity = Arc::new(Identity(RwLock::new(certified_key(&files)?)));
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_cert_resolver(identity.clone());
        Ok(ClientTls {
            files,
            verifier,
            identity,
            config: Arc::new(config),
        })
    }

    /// Re-reads the CA and the certificate; on failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let verifier = web_pki_verifier(&self.files)?;
        let key = certified_key(&self.files)?;
        *self.verifier.0.write().unwrap_or_else(|e| e.into_inner()) = verifier;
        *self.identity.0.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    /// The rustls configuration, for callers that make their own connections.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// A connector for hyper-util's pooled client: TLS for `https://`, plain TCP for `http://`.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Wraps `http` (with its timeouts and socket options) in a [`Connector`]. Without `tls`,
/// `https://` URLs are verified against the system's trust roots, read at the first such
/// handshake (a process that speaks only plain HTTP never reads them).
pub fn connector(mut http: HttpConnector, tls: Option<&ClientTls>) -> Connector {
    http.enforce_http(false);
    let config = match tls {
        Some(tls) => (*tls.config).clone(),
        None => system_config().clone(),
    };
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// The configuration of clients given no TLS files, made once per process.
fn system_config() -> &'static ClientConfig {
    static CONFIG: OnceLock<ClientConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SystemRoots))
            .with_no_client_auth()
    })
}

/// Verifies servers against the system's trust roots, read when a certificate is first
/// checked and kept for the process's life.
#[derive(Debug)]
struct SystemRoots;

impl SystemRoots {
    fn verifier() -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
        static VERIFIER: OnceLock<Result<Arc<WebPkiServerVerifier>, String>> = OnceLock::new();
        VERIFIER
            .get_or_init(|| {
                WebPkiServerVerifier::builder_with_provider(files::system_roots(), provider())
                    .build()
                    .map_err(|e| format!("no usable system trust roots ({e}): give a CA file"))
            })
            .clone()
            .map_err(rustls::Error::General)
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        SystemRoots::verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}

fn web_pki_verifier(files: &ClientTlsFiles) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let roots = match &files.ca {
        Some(ca) => files::roots(ca)?,
        None => files::system_roots(),
    };
    WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))
}

fn certified_key(files: &ClientTlsFiles) -> Result<Option<Arc<CertifiedKey>>, TlsError> {
    let (cert, key) = match (&files.cert, &files.key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => {
            return Err(TlsError::Incomplete(
                "a client certificate needs both its file and its key",
            ));
        }
    };
    let chain = files::certificates(cert)?;
    let key = files::private_key(key)?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::Config)?;
    Ok(Some(Arc::new(key)))
}

/// Verifies servers against the CA of the moment.
#[derive(Debug)]
struct Verifier(RwLock<Arc<WebPkiServerVerifier>>);

impl Verifier {
    fn current(&self) -> Arc<WebPkiServerVerifier> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current()
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// Presents the certificate of the moment to servers that ask for one.
#[derive(Debug)]
struct Identity(RwLock<Option<Arc<CertifiedKey>>>);

impl ResolvesClientCert for Identity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn has_certs(&self) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}
