//! A local certificate authority and the certificates it signs (rcgen), for
//! `hakv cluster up --tls` and tests: TLS tried in one command, not a production PKI.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::path::Path;

pub use rcgen::Error;

/// A CA made on the spot; its key lives only in memory unless written out.
pub struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Authority {
    pub fn new(common_name: &str) -> Result<Authority, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (host names or IP addresses), good as a server's and as a
    /// client's (members present theirs in both directions).
    pub fn issue(&self, common_name: &str, names: &[String]) -> Result<Issued, Error> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl Issued {
    /// Writes the certificate to `cert` and the key to `key`, the key readable by its owner
    /// only.
    pub fn write(&self, cert: &Path, key: &Path) -> std::io::Result<()> {
        std::fs::write(cert, &self.cert_pem)?;
        write_private(key, self.key_pem.as_bytes())
    }
}

/// Creates `path` with `bytes`, readable and writable by its owner only (0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
