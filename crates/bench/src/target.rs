//! The service under load: its address, and how each operation becomes an HTTP request.

use crate::config::{BenchConfig, ValueFill, WriteMethod};
use crate::error::BenchError;
use crate::workload::Op;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri, header};
use http_body_util::Full;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// A resolved target with the parts of every request prepared once.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// For an https:// target: the TLS configuration and the name its certificate must hold.
    pub tls: Option<TlsTarget>,
    /// `Bearer <token>`, sent with every request when given.
    authorization: Option<HeaderValue>,
    host: HeaderValue,
    /// Path prefix before `/data/` (empty unless the target URL has a path).
    base_path: String,
    read_query: &'static str,
    write_method: Method,
    /// The JSON bodies of writes, key `k` writing `write_bodies[k % len]` (cloning `Bytes`
    /// is a refcount bump): one for `--value-fill repeat`, up to 1024 for `random`.
    write_bodies: Vec<Bytes>,
}

fn parse_url(url: &str) -> Result<hakv_api::BaseUrl, BenchError> {
    hakv_api::parse_base_url(url).map_err(|reason| BenchError::InvalidTarget {
        url: url.to_string(),
        reason: reason.to_string(),
    })
}

/// How to speak TLS to `host`, trusting `--ca` (or the system's roots).
fn tls_for(config: &BenchConfig, host: &str) -> Result<TlsTarget, BenchError> {
    let invalid = |reason: String| BenchError::InvalidTarget {
        url: config.target.clone(),
        reason,
    };
    let tls = hakv_tls::ClientTls::load(hakv_tls::ClientTlsFiles {
        ca: config.ca.clone(),
        ..Default::default()
    })
    .map_err(|e| invalid(e.to_string()))?;
    let name = hakv_tls::ServerName::try_from(host.to_string())
        .map_err(|e| invalid(format!("not a TLS server name: {e}")))?;
    Ok(TlsTarget {
        connector: hakv_tls::TlsConnector::from(tls.config()),
        name,
    })
}

/// What an https:// target needs on every new connection.
pub struct TlsTarget {
    pub connector: hakv_tls::TlsConnector,
    /// The name the target's certificate must hold (the URL's host).
    pub name: hakv_tls::ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// At most this many bytes of different random values are kept (values of 64 KiB or more:
/// fewer than 1024 of them; of 64 MiB, one).
const RANDOM_BODIES_BYTES: usize = 64 << 20;

/// The bodies writes take turns with: one of `size` repeated characters, or, for random
/// values, up to 1024 different strings of `size` random letters and digits (from `seed`),
/// so that neighbouring keys in a storage engine's block hold values that do not compress.
pub fn write_bodies(size: usize, fill: ValueFill, seed: u64) -> Vec<Bytes> {
    use rand::{Rng, SeedableRng};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    match fill {
        ValueFill::Repeat => vec![write_body(size)],
        ValueFill::Random => {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let count = (RANDOM_BODIES_BYTES / size.max(1)).clamp(1, 1024);
            (0..count)
                .map(|_| {
                    let value: String = (0..size)
                        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                        .collect();
                    Bytes::from(format!("{{\"value\":\"{value}\"}}"))
                })
                .collect()
        }
    }
}

/// The JSON body of every write: a string of exactly `size` characters.
pub fn write_body(size: usize) -> Bytes {
    let mut body = String::with_capacity(size + 16);
    body.push_str("{\"value\":\"");
    body.extend(std::iter::repeat_n('x', size));
    body.push_str("\"}");
    Bytes::from(body)
}

impl Target {
    /// Parses the URL and resolves the host once, so no request pays for DNS.
    pub async fn resolve(config: &BenchConfig) -> Result<Target, BenchError> {
        let parsed = parse_url(&config.target)?;
        let addr = tokio::net::lookup_host((parsed.host.as_str(), parsed.port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| BenchError::InvalidTarget {
                url: config.target.clone(),
                reason: format!("cannot resolve host {}", parsed.host),
            })?;
        let authority = Uri::try_from(config.target.as_str())
            .ok()
            .and_then(|u| u.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| addr.to_string());
        let tls = match parsed.tls {
            false => None,
            true => Some(tls_for(config, &parsed.host)?),
        };
        let authorization = config
            .token
            .as_ref()
            .map(|token| {
                HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| BenchError::InvalidConfig("--token must be visible ASCII characters".into()))
            })
            .transpose()?;
        Ok(Target {
            addr,
            tls,
            authorization,
            host: HeaderValue::try_from(authority).map_err(|_| BenchError::InvalidTarget {
                url: config.target.clone(),
                reason: "bad host".into(),
            })?,
            base_path: parsed.base_path,
            read_query: if config.stale_reads {
                "?consistency=stale"
            } else {
                ""
            },
            write_method: match config.write_method {
                WriteMethod::Post => Method::POST,
                WriteMethod::Put => Method::PUT,
            },
            write_bodies: write_bodies(config.value_size, config.value_fill, config.seed),
        })
    }

    pub fn request(&self, op: Op) -> Request<Full<Bytes>> {
        let mut path = String::with_capacity(self.base_path.len() + 40);
        path.push_str(&self.base_path);
        let (method, body, key) = match op {
            Op::Read(key) => (Method::GET, Bytes::new(), key),
            Op::Write(key) => {
                let body = &self.write_bodies[(key % self.write_bodies.len() as u64) as usize];
                (self.write_method.clone(), body.clone(), key)
            }
        };
        // Key names are ASCII letters, digits and '-', so they need no percent-encoding.
        let _ = write!(path, "/data/bench-{key}");
        if matches!(op, Op::Read(_)) {
            path.push_str(self.read_query);
        }
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.host.clone());
        if let Some(authorization) = &self.authorization {
            headers.insert(header::AUTHORIZATION, authorization.clone());
        }
        if matches!(op, Op::Write(_)) {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_target_names_the_url_and_the_reason() {
        let err = parse_url("ftp://example.com").unwrap_err().to_string();
        assert!(
            err.contains("ftp://example.com") && err.contains("only http://"),
            "{err}"
        );
    }

    #[test]
    fn write_body_is_seed_json_of_the_requested_size() {
        let body = write_body(37);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["value"].as_str().unwrap().len(), 37);
        assert_eq!(json.as_object().unwrap().len(), 1);
    }

    #[test]
    fn random_values_differ_and_keep_their_size() {
        let bodies = write_bodies(1024, ValueFill::Random, 7);
        assert_eq!(bodies.len(), 1024);
        let distinct: std::collections::HashSet<_> = bodies.iter().collect();
        assert_eq!(distinct.len(), bodies.len());
        for body in &bodies {
            let json: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(json["value"].as_str().unwrap().len(), 1024);
        }
        assert_eq!(
            write_bodies(64 << 20, ValueFill::Random, 7).len(),
            1,
            "memory stays bounded"
        );
        assert_eq!(write_bodies(1024, ValueFill::Repeat, 7), vec![write_body(1024)]);
    }

    #[tokio::test]
    async fn requests_carry_method_path_and_body() {
        let config = BenchConfig {
            target: "http://127.0.0.1:1/base".into(),
            write_method: WriteMethod::Put,
            stale_reads: true,
            value_size: 3,
            ..BenchConfig::default()
        };
        let target = Target::resolve(&config).await.unwrap();
        let read = target.request(Op::Read(12));
        assert_eq!(read.method(), Method::GET);
        assert_eq!(read.uri(), "/base/data/bench-12?consistency=stale");
        assert_eq!(read.headers()[header::HOST], "127.0.0.1:1");
        let write = target.request(Op::Write(0));
        assert_eq!(write.method(), Method::PUT);
        assert_eq!(write.uri(), "/base/data/bench-0");
        assert_eq!(write.headers()[header::CONTENT_TYPE], "application/json");
    }
}
