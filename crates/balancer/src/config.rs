//! The balancer's configuration: one struct with defaults, TOML (serde) support and
//! `validate()`, so a bad setting is refused at start (or at reload) with a clear message.

use crate::algorithm::Algorithm;
use http::uri::Authority;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Heaviest weight accepted; bounds the key-hash ring (64 points per unit of weight).
pub const MAX_WEIGHT: u32 = 1000;
/// Most backends in one set (file, flags or admin API): a bound on the per-set state (the
/// key-hash ring, the per-backend counters) and on the per-request scans.
pub const MAX_BACKENDS: usize = 1024;
/// Most attempts one request may make (the first try plus retries).
pub const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("backend `{0}`: expected HOST:PORT or HOST:PORT=WEIGHT (e.g. 127.0.0.1:7379=2): {1}")]
    BadBackend(String, String),
    #[error("backend `{addr}`: weight must be 1..={max}, got `{weight}`")]
    BadWeight { addr: String, weight: String, max: u32 },
    #[error("TLS: {0}")]
    Tls(#[from] hakv_tls::TlsError),
    #[error("backend `{0}` is listed twice")]
    DuplicateBackend(String),
    #[error("no backends: give at least one --backend ADDR[=WEIGHT] (or `backends` in the file)")]
    NoBackends,
    #[error(
        "unknown algorithm `{0}`: use round-robin, weighted-round-robin, least-connections, p2c or key-hash"
    )]
    UnknownAlgorithm(String),
    #[error("{} must be {rule}, got {value}", setting(name))]
    OutOfRange {
        name: &'static str,
        rule: &'static str,
        value: String,
    },
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// `message` names the line and column but never quotes the line: it may hold a secret.
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
}

/// One backend as configured: `HOST:PORT[=WEIGHT]` (an `http://` prefix is accepted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackendSpec {
    pub authority: Authority,
    pub weight: u32,
}

impl BackendSpec {
    /// A backend at `addr` (`HOST:PORT`, optionally with `http://` before and `/` after) with
    /// `weight`. The address follows hakv's one rule (`hakv_api::peer_addr`): an IP address
    /// or a DNS name, and a port from 1 to 65535; a host name is kept in lower case, as a
    /// cluster's members record their peers, so `leader_aware` can match them.
    pub fn new(addr: &str, weight: u32) -> Result<Self, ConfigError> {
        let written = addr.trim();
        let bad = |why: String| ConfigError::BadBackend(written.to_owned(), why);
        let authority: Authority = Self::canonical_addr(addr)
            .map_err(bad)?
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        if !(1..=MAX_WEIGHT).contains(&weight) {
            return Err(ConfigError::BadWeight {
                addr: authority.to_string(),
                weight: weight.to_string(),
                max: MAX_WEIGHT,
            });
        }
        Ok(Self { authority, weight })
    }

    /// The form a backend's address is kept in (see [`new`](Self::new)), also for finding a
    /// backend by the address a request names; why not, when it is no address at all.
    pub fn canonical_addr(addr: &str) -> Result<String, String> {
        let bare = addr.trim();
        let bare = bare.strip_prefix("http://").unwrap_or(bare);
        hakv_api::peer_addr(bare.strip_suffix('/').unwrap_or(bare))
    }
}

impl FromStr for BackendSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some((addr, weight)) = s.rsplit_once('=') else {
            return Self::new(s, 1);
        };
        match weight.parse::<u32>() {
            Ok(weight) => Self::new(addr, weight),
            Err(_) => Err(ConfigError::BadWeight {
                addr: addr.to_owned(),
                weight: weight.to_owned(),
                max: MAX_WEIGHT,
            }),
        }
    }
}

impl TryFrom<String> for BackendSpec {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<BackendSpec> for String {
    fn from(b: BackendSpec) -> String {
        b.to_string()
    }
}

impl fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.authority, self.weight)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalancerConfig {
    pub listen: SocketAddr,
    /// Where `/lb/*` and `/metrics` are served (never on the proxy port). Unset: loopback,
    /// on the port after `listen`'s (an ephemeral one when `listen`'s port is 0); see
    /// [`admin_addr`](Self::admin_addr). Off loopback it needs `admin_token`.
    pub admin_listen: Option<SocketAddr>,
    /// When set, the admin endpoints that change something (POST, PATCH, DELETE on `/lb/*`)
    /// need `Authorization: Bearer <token>`; status and metrics stay readable.
    pub admin_token: Option<String>,
    pub backends: Vec<BackendSpec>,
    pub algorithm: Algorithm,
    /// Runtime worker threads; 0 = one per available core, 1 = a single-threaded runtime.
    pub threads: usize,
    /// Send writes to the leader named by the backends' `GET /cluster`.
    pub leader_aware: bool,
    /// With `leader_aware`: reads go to the other backends while any of them is available.
    pub reads_off_leader: bool,
    pub leader_refresh_ms: u64,
    /// Bounded-load factor of key-hash: no backend takes more than this × its fair share.
    pub hash_load_factor: f64,
    /// Seed for the p2c and backoff random source; 0 = seeded from the clock.
    pub seed: u64,
    pub health: HealthConfig,
    pub outlier: OutlierConfig,
    pub retry: RetryConfig,
    pub timeouts: TimeoutConfig,
    pub limits: LimitConfig,
    pub tls: TlsConfig,
}

/// TLS on the proxy listener, and towards the backends. Certificates are re-read on SIGHUP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The proxy listener serves https with this certificate chain (PEM, leaf first)...
    pub cert: Option<PathBuf>,
    /// ...and this private key.
    pub key: Option<PathBuf>,
    /// Backends are called at https://, their certificates checked against this CA.
    pub backend_ca: Option<PathBuf>,
    /// A client certificate for backends that require one (mutual TLS); backends are then
    /// called at https:// (checked against the system's roots without `backend_ca`).
    pub backend_cert: Option<PathBuf>,
    pub backend_key: Option<PathBuf>,
}

impl TlsConfig {
    /// The proxy listener's files, when it serves https.
    pub fn listener_files(&self) -> Option<hakv_tls::ServerTlsFiles> {
        Some(hakv_tls::ServerTlsFiles {
            cert: self.cert.clone()?,
            key: self.key.clone()?,
            client_ca: None,
        })
    }

    /// How backends are called, when they speak https.
    pub fn backend_files(&self) -> Option<hakv_tls::ClientTlsFiles> {
        if self.backend_ca.is_none() && self.backend_cert.is_none() {
            return None;
        }
        Some(hakv_tls::ClientTlsFiles {
            ca: self.backend_ca.clone(),
            cert: self.backend_cert.clone(),
            key: self.backend_key.clone(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    pub path: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive good probes before a down backend is up again.
    pub rise: u32,
    /// Consecutive failed probes before an up backend is down.
    pub fall: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierConfig {
    /// Consecutive connect errors or 5xx answers that eject a backend; 0 disables ejection.
    pub consecutive_failures: u32,
    /// First ejection lasts this long; the n-th lasts n times as long, up to `max_ejection_ms`.
    pub base_ejection_ms: u64,
    pub max_ejection_ms: u64,
    /// Never eject more than this fraction of the backends at once.
    pub max_ejected_fraction: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// The first try plus retries, at most.
    pub max_attempts: u32,
    /// Retries may be at most this fraction of requests (a token bucket filled per request).
    pub budget_ratio: f64,
    /// Most retry tokens saved up during quiet times.
    pub budget_max_tokens: u32,
    /// Tokens at start, so a fresh balancer can fail over before it has seen traffic. Over
    /// any run: retries ≤ budget_initial_tokens + budget_ratio × requests.
    pub budget_initial_tokens: u32,
    /// Full-jitter backoff: the n-th retry waits a random time below base × 2^(n-1).
    pub backoff_base_ms: u64,
    /// Request bodies up to this size are buffered so they can be replayed on a retry; larger
    /// ones are streamed and never retried.
    pub max_buffered_body_bytes: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    pub connect_ms: u64,
    /// Until the response headers of one attempt.
    pub attempt_ms: u64,
    /// Until the response headers, over all attempts and backoffs.
    pub total_ms: u64,
    /// A streamed response body that sends nothing for this long is cut off (nginx's
    /// `proxy_read_timeout`); small bodies are read whole within `attempt_ms`.
    pub body_idle_ms: u64,
    /// Pooled backend connections idle longer than this are closed; keep it below the backends'
    /// own idle timeout so the balancer never reuses a connection the backend is closing.
    pub backend_idle_ms: u64,
    /// On shutdown, how long open client connections may take to finish.
    pub drain_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    /// Client connections; beyond it new connections wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Requests in progress; beyond it requests are shed with 503 and `Retry-After`.
    pub max_in_flight: usize,
    pub retry_after_secs: u32,
    /// Idle pooled connections kept per backend.
    pub max_idle_per_backend: usize,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7380)),
            admin_listen: None,
            admin_token: None,
            backends: Vec::new(),
            algorithm: Algorithm::RoundRobin,
            threads: 0,
            leader_aware: false,
            reads_off_leader: false,
            leader_refresh_ms: 1000,
            hash_load_factor: 1.25,
            seed: 0,
            health: HealthConfig::default(),
            outlier: OutlierConfig::default(),
            retry: RetryConfig::default(),
            timeouts: TimeoutConfig::default(),
            limits: LimitConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            path: "/ready".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 3,
        }
    }
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_ms: 5_000,
            max_ejection_ms: 60_000,
            max_ejected_fraction: 0.5,
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            budget_ratio: 0.2,
            budget_max_tokens: 100,
            budget_initial_tokens: 10,
            backoff_base_ms: 2,
            max_buffered_body_bytes: 2 << 20,
        }
    }
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect_ms: 1_000,
            attempt_ms: 5_000,
            total_ms: 15_000,
            body_idle_ms: 60_000,
            backend_idle_ms: 20_000,
            drain_ms: 10_000,
        }
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_in_flight: 10_000,
            retry_after_secs: 1,
            max_idle_per_backend: 256,
        }
    }
}

/// A setting's file key with the flag that also sets it, so a message names what was typed
/// whichever way it was given: `health.timeout_ms (--health-timeout-ms)`.
fn setting(key: &str) -> String {
    let flag = match key {
        "admin_listen" => "--admin-listen",
        "tls.cert" => "--tls-cert",
        "tls.key" => "--tls-key",
        "tls.backend_cert" => "--backend-cert",
        "tls.backend_key" => "--backend-key",
        "admin_token" => "--admin-token",
        "backends" => "--backend",
        "health.interval_ms" => "--health-interval-ms",
        "health.timeout_ms" => "--health-timeout-ms",
        "health.rise" => "--rise",
        "health.fall" => "--fall",
        "retry.max_attempts" => "--max-attempts",
        "retry.budget_ratio" => "--retry-budget",
        "timeouts.attempt_ms" => "--attempt-timeout-ms",
        "timeouts.total_ms" => "--total-timeout-ms",
        "limits.max_connections" => "--max-connections",
        "limits.max_in_flight" => "--max-in-flight",
        "threads" => "--threads",
        _ => return key.to_owned(),
    };
    format!("{key} ({flag})")
}

fn check(
    ok: bool,
    name: &'static str,
    rule: &'static str,
    value: impl fmt::Display,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            name,
            rule,
            value: value.to_string(),
        })
    }
}

impl BalancerConfig {
    /// The admin listener's address: `admin_listen`, or loopback on the port after `listen`'s
    /// (ephemeral when `listen`'s port is 0 or the last one).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listen.unwrap_or_else(|| {
            let port = match self.listen.port() {
                0 | u16::MAX => 0,
                port => port + 1,
            };
            SocketAddr::from(([127, 0, 0, 1], port))
        })
    }

    /// Reads a TOML file; missing fields keep their defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown,
            message: hakv_api::error_at(&text, e.span().map(|s| s.start), e.message()),
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.backends.is_empty() {
            return Err(ConfigError::NoBackends);
        }
        check(
            self.backends.len() <= MAX_BACKENDS,
            "backends",
            "at most 1024 entries",
            self.backends.len(),
        )?;
        let mut seen = std::collections::HashSet::new();
        for b in &self.backends {
            if !seen.insert(b.authority.as_str()) {
                return Err(ConfigError::DuplicateBackend(b.authority.to_string()));
            }
            check(
                (1..=MAX_WEIGHT).contains(&b.weight),
                "backend weight",
                "1..=1000",
                b.weight,
            )?;
        }
        check(
            self.admin_addr().ip().is_loopback() || self.admin_token.is_some(),
            "admin_listen",
            "a loopback address, or protected by admin_token (HAKV_BALANCE_ADMIN_TOKEN)",
            self.admin_addr(),
        )?;
        if let Some(token) = &self.admin_token {
            check(
                !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()),
                "admin_token",
                "one or more visible ASCII characters (no spaces)",
                "(not shown)",
            )?;
        }
        let t = &self.tls;
        check(
            t.cert.is_some() == t.key.is_some(),
            "tls.cert",
            "given with tls.key",
            "only one of them",
        )?;
        check(
            t.backend_cert.is_some() == t.backend_key.is_some(),
            "tls.backend_cert",
            "given with tls.backend_key",
            "only one of them",
        )?;
        let h = &self.health;
        check(
            h.path.starts_with('/'),
            "health.path",
            "a path starting with /",
            &h.path,
        )?;
        check(h.interval_ms >= 10, "health.interval_ms", ">= 10", h.interval_ms)?;
        check(
            h.timeout_ms >= 1 && h.timeout_ms <= h.interval_ms,
            "health.timeout_ms",
            "1..=health.interval_ms",
            h.timeout_ms,
        )?;
        check(h.rise >= 1, "health.rise", ">= 1", h.rise)?;
        check(h.fall >= 1, "health.fall", ">= 1", h.fall)?;
        let o = &self.outlier;
        check(
            (0.0..=1.0).contains(&o.max_ejected_fraction),
            "outlier.max_ejected_fraction",
            "0.0..=1.0",
            o.max_ejected_fraction,
        )?;
        check(
            o.base_ejection_ms <= o.max_ejection_ms,
            "outlier.base_ejection_ms",
            "<= outlier.max_ejection_ms",
            o.base_ejection_ms,
        )?;
        let r = &self.retry;
        check(
            (1..=MAX_ATTEMPTS).contains(&r.max_attempts),
            "retry.max_attempts",
            "1..=8",
            r.max_attempts,
        )?;
        check(
            (0.0..=1.0).contains(&r.budget_ratio),
            "retry.budget_ratio",
            "0.0..=1.0",
            r.budget_ratio,
        )?;
        let t = &self.timeouts;
        check(t.connect_ms >= 1, "timeouts.connect_ms", ">= 1", t.connect_ms)?;
        check(t.attempt_ms >= 1, "timeouts.attempt_ms", ">= 1", t.attempt_ms)?;
        check(
            t.total_ms >= t.attempt_ms,
            "timeouts.total_ms",
            ">= timeouts.attempt_ms",
            t.total_ms,
        )?;
        check(
            t.body_idle_ms >= 1,
            "timeouts.body_idle_ms",
            ">= 1",
            t.body_idle_ms,
        )?;
        check(
            t.backend_idle_ms >= 1,
            "timeouts.backend_idle_ms",
            ">= 1",
            t.backend_idle_ms,
        )?;
        let l = &self.limits;
        // Bounded so the shutdown drain can wait for all connection permits at once.
        check(
            (1..=1_000_000).contains(&l.max_connections),
            "limits.max_connections",
            "1..=1000000",
            l.max_connections,
        )?;
        check(
            l.max_in_flight >= 1,
            "limits.max_in_flight",
            ">= 1",
            l.max_in_flight,
        )?;
        check(
            self.hash_load_factor >= 1.0,
            "hash_load_factor",
            ">= 1.0",
            self.hash_load_factor,
        )?;
        check(
            self.leader_aware || !self.reads_off_leader,
            "reads_off_leader",
            "only with leader_aware (the leader must be known)",
            self.reads_off_leader,
        )?;
        check(
            self.leader_refresh_ms >= 10,
            "leader_refresh_ms",
            ">= 10",
            self.leader_refresh_ms,
        )?;
        Ok(())
    }
}

/// Milliseconds to a `Duration`, for the `*_ms` settings.
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_specs_parse_with_and_without_weight() {
        let b: BackendSpec = "127.0.0.1:7379".parse().unwrap();
        assert_eq!((b.authority.as_str(), b.weight), ("127.0.0.1:7379", 1));
        let b: BackendSpec = "http://node-a:80=5".parse().unwrap();
        assert_eq!((b.authority.as_str(), b.weight), ("node-a:80", 5));
    }

    #[test]
    fn bad_backend_specs_are_refused_with_the_reason() {
        let e = "127.0.0.1".parse::<BackendSpec>().unwrap_err();
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
        let e = "127.0.0.1:1=0".parse::<BackendSpec>().unwrap_err();
        assert!(e.to_string().contains("weight must be 1..=1000"), "{e}");
        assert!("a:1=x".parse::<BackendSpec>().is_err());
    }

    #[test]
    fn toml_overrides_only_what_it_names() {
        let c: BalancerConfig = toml::from_str(
            "backends = [\"127.0.0.1:1=2\", \"127.0.0.1:2\"]\nalgorithm = \"p2c\"\n[health]\nfall = 7\n",
        )
        .unwrap();
        assert_eq!(c.backends.len(), 2);
        assert_eq!(c.backends[0].weight, 2);
        assert_eq!(c.algorithm, Algorithm::P2c);
        assert_eq!(c.health.fall, 7);
        assert_eq!(c.health.rise, HealthConfig::default().rise);
        c.validate().unwrap();
    }

    #[test]
    fn validate_names_the_bad_setting() {
        let mut c = BalancerConfig::default();
        assert!(matches!(c.validate(), Err(ConfigError::NoBackends)));
        c.backends = vec!["127.0.0.1:1".parse().unwrap(), "127.0.0.1:1".parse().unwrap()];
        assert!(matches!(c.validate(), Err(ConfigError::DuplicateBackend(_))));
        c.backends = (1..=MAX_BACKENDS + 1)
            .map(|port| format!("127.0.0.1:{port}").parse().unwrap())
            .collect();
        assert!(c.validate().unwrap_err().to_string().starts_with("backends"));
        c.backends.truncate(1);
        c.health.timeout_ms = c.health.interval_ms + 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("health.timeout_ms"), "{e}");
    }

    #[test]
    fn the_admin_api_is_on_loopback_next_to_the_proxy_unless_protected_by_a_token() {
        let mut c = BalancerConfig {
            listen: "0.0.0.0:7380".parse().unwrap(),
            backends: vec!["127.0.0.1:1".parse().unwrap()],
            ..BalancerConfig::default()
        };
        assert_eq!(c.admin_addr(), "127.0.0.1:7381".parse().unwrap());
        c.validate().unwrap();
        c.listen = "127.0.0.1:0".parse().unwrap();
        assert_eq!(c.admin_addr(), "127.0.0.1:0".parse().unwrap());
        c.admin_listen = Some("0.0.0.0:9901".parse().unwrap());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("admin_listen"), "{e}");
        c.admin_token = Some("s3cret-t0ken".into());
        c.validate().unwrap();
    }

    #[test]
    fn an_admin_token_must_be_header_safe_and_is_not_echoed() {
        let mut c = BalancerConfig {
            backends: vec!["127.0.0.1:1".parse().unwrap()],
            ..BalancerConfig::default()
        };
        for bad in ["", "has space", "new\nline", "caf\u{e9}"] {
            c.admin_token = Some(bad.into());
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with("admin_token"), "{e}");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
        c.admin_token = Some("Tok3n-_.~!".into());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_in_the_file_are_errors() {
        assert!(toml::from_str::<BalancerConfig>("backendz = []").is_err());
    }

    #[test]
    fn a_file_error_points_at_the_line_without_quoting_it() {
        let dir = std::env::temp_dir().join(format!("hakv-lb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lb.toml");
        std::fs::write(
            &path,
            "backends = [\"127.0.0.1:1\"]\nadmin_token = s3cret-t0ken\n",
        )
        .unwrap();
        let e = BalancerConfig::from_file(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("s3cret"), "the token leaked: {e}");
    }
}
