//! `hakv cluster up --tls`: a local CA and a certificate for every member, the balancer and
//! a person's client tools, made once per cluster folder (in `<dir>/tls`, keys 0600), so TLS
//! can be tried in one command. Members require each other's certificates (mutual TLS).

use anyhow::Context;
use hakv_tls::generate::{Authority, write_private};
use hakv_tls::{ClientTls, ClientTlsFiles};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The certificates of one local cluster.
pub(super) struct LocalPki {
    dir: PathBuf,
}

/// Every certificate is good for these names: the cluster listens on loopback.
fn names() -> Vec<String> {
    vec!["127.0.0.1".into(), "localhost".into(), "::1".into()]
}

impl LocalPki {
    /// The certificates in `<cluster_dir>/tls`, made now for members 1..=`nodes` unless they
    /// exist (a restart keeps its CA).
    pub(super) fn ensure(cluster_dir: &Path, nodes: u64) -> anyhow::Result<LocalPki> {
        let pki = LocalPki {
            dir: cluster_dir.join("tls"),
        };
        let everyone = (1..=nodes)
            .map(|id| format!("node-{id}"))
            .chain(["balancer".to_string(), "client".to_string()]);
        let missing: Vec<String> = everyone.filter(|name| !pki.cert(name).exists()).collect();
        if missing.is_empty() {
            return Ok(pki);
        }
        std::fs::create_dir_all(&pki.dir).with_context(|| format!("cannot create {}", pki.dir.display()))?;
        if pki.ca().exists() {
            anyhow::bail!(
                "{} has a CA but lacks {}; remove the folder to make a new CA",
                pki.dir.display(),
                missing.join(", ")
            );
        }
        let authority = Authority::new("hakv local cluster CA").context("cannot make a CA")?;
        std::fs::write(pki.ca(), authority.cert_pem())?;
        for name in missing {
            let issued = authority
                .issue(&name, &names())
                .with_context(|| format!("cannot make a certificate for {name}"))?;
            issued
                .write(&pki.cert(&name), &pki.key(&name))
                .with_context(|| format!("cannot write the certificate of {name}"))?;
        }
        // The CA's key is not kept: these certificates are for trying TLS, and a new member
        // gets a new folder (and CA) from `cluster up`.
        let readme = "Made by `hakv cluster up --tls`: ca.pem signs every certificate here.\n\
                      Client tools: --ca ca.pem --cert client.pem --key client-key.pem\n";
        write_private(&pki.dir.join("README"), readme.as_bytes())?;
        Ok(pki)
    }

    pub(super) fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }

    /// `hakv serve` flags of member `id`: its certificate, and the CA for peers both ways.
    pub(super) fn member_args(&self, id: u64) -> Vec<OsString> {
        let name = format!("node-{id}");
        flags(&[
            ("--tls-cert", self.cert(&name)),
            ("--tls-key", self.key(&name)),
            ("--tls-ca", self.ca()),
            ("--tls-client-ca", self.ca()),
        ])
    }

    /// `hakv balance` flags: https for clients, its certificate to the members.
    pub(super) fn balancer_args(&self) -> Vec<OsString> {
        flags(&[
            ("--tls-cert", self.cert("balancer")),
            ("--tls-key", self.key("balancer")),
            ("--backend-ca", self.ca()),
            ("--backend-cert", self.cert("balancer")),
            ("--backend-key", self.key("balancer")),
        ])
    }

    /// The client flags a person passes to reach a member directly.
    pub(super) fn client_flags(&self) -> String {
        format!(
            "--ca {} --cert {} --key {}",
            self.ca().display(),
            self.cert("client").display(),
            self.key("client").display()
        )
    }

    /// What `cluster up` itself uses to call the members.
    pub(super) fn client_tls(&self) -> anyhow::Result<ClientTls> {
        Ok(ClientTls::load(ClientTlsFiles {
            ca: Some(self.ca()),
            cert: Some(self.cert("client")),
            key: Some(self.key("client")),
        })?)
    }
}

fn flags(pairs: &[(&str, PathBuf)]) -> Vec<OsString> {
    pairs
        .iter()
        .flat_map(|(flag, path)| [OsString::from(flag), path.clone().into_os_string()])
        .collect()
}
