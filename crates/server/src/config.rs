//! `hakv serve` configuration: defaults, then a TOML file (`--config`), then environment
//! variables and flags (clap merges those two). Checked once at start by `validate`.

use crate::units::{de_bytes, de_duration, de_opt_bytes, parse_bytes, parse_duration};
use hakv_cache::{CacheConfig, Policy};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Largest `max_value_bytes` a cluster member accepts (see the check in `validate`).
pub const MAX_CLUSTER_VALUE_BYTES: u64 = 4 << 20;

/// Everything a node is configured with. Field names are also the TOML keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    #[serde(deserialize_with = "de_addr")]
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    #[serde(deserialize_with = "de_policy")]
    pub cache_policy: Policy,
    #[serde(deserialize_with = "de_bytes")]
    pub cache_bytes: u64,
    pub cache_shards: usize,
    #[serde(deserialize_with = "de_bytes")]
    pub max_value_bytes: u64,
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub write_queue: usize,
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    #[serde(deserialize_with = "de_bytes")]
    pub store_cache_bytes: u64,
    /// Memory all scan pages being read or sent may hold at once; a scan waits for room.
    #[serde(deserialize_with = "de_bytes")]
    pub scan_memory: u64,
    /// This node's id in a cluster; `None` (and no peers) runs a single node.
    pub node_id: Option<u64>,
    /// Every voter of a static cluster, this node included, as `ID=ADDR,ID=ADDR,…`: the
    /// addresses peers and forwarded requests use.
    #[serde(deserialize_with = "de_peers")]
    pub peers: Vec<Peer>,
    /// Shared secret of the cluster's internal routes (peers authenticate with it).
    pub cluster_token: Option<String>,
    #[serde(deserialize_with = "de_duration")]
    pub heartbeat: Duration,
    /// The leader's lease: a follower that hears nothing from the leader for this long (plus
    /// a random 10–33 % of it) starts an election; a failed election is retried after a
    /// random half to whole of it.
    #[serde(deserialize_with = "de_duration")]
    pub election_timeout: Duration,
    /// A leader whose host still completes TCP handshakes (so it may only be slow: an fsync
    /// stall, a busy core) is replaced only after this much silence; a leader whose process
    /// is gone, or whom the network cuts off, is replaced after `election_timeout`.
    #[serde(deserialize_with = "de_duration")]
    pub leader_stall_timeout: Duration,
    /// Log entries between snapshots (after which the log is compacted).
    pub snapshot_every: u64,
    /// Pace of a snapshot sent to a member that catches up, in bytes per second (0: unpaced).
    #[serde(deserialize_with = "de_bytes")]
    pub snapshot_rate: u64,
    /// Refuse writes (507) while fewer bytes than this are free on the data directory's
    /// filesystem; `None`: a tenth of the filesystem, at most 1 GiB.
    #[serde(deserialize_with = "de_opt_bytes")]
    pub disk_reserve: Option<u64>,
    /// Start as a new member waiting to be added (`POST /cluster/members`) instead of
    /// forming the cluster of `--peers`.
    pub join: bool,
    /// The leader serves linearizable reads under a lease instead of a heartbeat round each
    /// (docs/cluster.md, "Leader leases"; assumes no member's clock runs more than 1.5 times as fast as another's).
    pub lease_reads: bool,
    /// The listener speaks TLS with this certificate chain (PEM, leaf first); in a cluster,
    /// every member then does, and members call each other at `https://`.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: every connection must present a certificate signed by this CA (members
    /// present their own `tls_cert` when they call each other).
    pub tls_client_ca: Option<PathBuf>,
    /// The CA that peers' certificates chain to, when this member calls them; the system's
    /// trust roots if unset.
    pub tls_ca: Option<PathBuf>,
    /// The bootstrap admin token; set, it turns client authentication on (docs/security.md).
    pub admin_token: Option<String>,
    /// Serve off loopback without client authentication.
    pub insecure: bool,
}

/// One voter of a static cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    /// As written (`hakv_api::peer_addr`): a host name is resolved at each connection.
    pub addr: String,
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_peers(text: &str) -> Result<Vec<Peer>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not ID=ADDR"))?;
            let id = id
                .trim()
                .parse()
                .map_err(|_| format!("{id:?} in {part:?} is not a node id (a number)"))?;
            let addr = hakv_api::peer_addr(addr).map_err(|e| format!("in {part:?}: {e}"))?;
            Ok(Peer { id, addr })
        })
        .collect()
}

/// `--peers` as one value (clap would take a bare `Vec` as a repeated flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerList(pub Vec<Peer>);

fn parse_peer_list(text: &str) -> Result<PeerList, String> {
    parse_peers(text).map(PeerList)
}

fn de_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    hakv_api::resolve_addr(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_peers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Peer>, D::Error> {
    parse_peers(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7379)),
            data_dir: PathBuf::from("hakv-data"),
            cache_policy: Policy::Lru,
            cache_bytes: 64 << 20,
            cache_shards: 16,
            max_value_bytes: 1 << 20,
            max_connections: 4096,
            max_in_flight: 1024,
            write_queue: 4096,
            request_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            store_cache_bytes: 32 << 20,
            scan_memory: 256 << 20,
            node_id: None,
            peers: Vec::new(),
            cluster_token: None,
            heartbeat: Duration::from_millis(50),
            election_timeout: Duration::from_millis(150),
            leader_stall_timeout: Duration::from_secs(1),
            snapshot_every: 10_000,
            snapshot_rate: 64 << 20,
            disk_reserve: None,
            join: false,
            lease_reads: true,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_ca: None,
            admin_token: None,
            insecure: false,
        }
    }
}

/// A configuration that cannot run, with a message that says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("invalid setting {setting}: {message}")]
    Invalid { setting: &'static str, message: String },
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

impl ServeConfig {
    /// Builds the configuration from flags/environment over an optional file over defaults.
    pub fn load(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        let mut config = match &args.config {
            Some(path) => ServeConfig::from_file(path)?,
            None => ServeConfig::default(),
        };
        args.apply_to(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &std::path::Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        // toml's own message quotes the offending line, which may hold the cluster token.
        toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
            path: path.to_owned(),
            message: hakv_api::error_at(&text, e.span().map(|s| s.start), e.message()),
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if !(1..=64 << 20).contains(&self.max_value_bytes) {
            return Err(invalid("max_value_bytes", "must be between 1 byte and 64MiB"));
        }
        for (setting, value) in [
            ("max_connections", self.max_connections),
            ("max_in_flight", self.max_in_flight),
            ("write_queue", self.write_queue),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        if self.scan_memory < 1 << 20 {
            return Err(invalid("scan_memory", "must be at least 1MiB"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be longer than zero"));
        }
        self.cache_config()
            .validate()
            .map_err(|e| invalid("cache", e.to_string()))?;
        self.validate_tls()?;
        self.validate_auth()?;
        self.validate_cluster()
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.admin_token
            && (token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "admin_token",
                "must be 16 or more visible ASCII characters (no spaces)",
            ));
        }
        if self.admin_token.is_none() && !self.insecure && !self.listen.ip().is_loopback() {
            return Err(invalid(
                "listen",
                format!(
                    "{} is not a loopback address: anyone who reaches it could read and write \
                     every key. Turn authentication on with --admin-token (HAKV_ADMIN_TOKEN), or \
                     pass --insecure to serve without it",
                    self.listen
                ),
            ));
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(invalid("tls_key", "--tls-cert needs --tls-key")),
            (None, Some(_)) => return Err(invalid("tls_cert", "--tls-key needs --tls-cert")),
            _ => {}
        }
        if self.tls_cert.is_none() {
            for (setting, value) in [("tls_client_ca", &self.tls_client_ca), ("tls_ca", &self.tls_ca)] {
                if value.is_some() {
                    return Err(invalid(
                        setting,
                        "needs --tls-cert and --tls-key (members speak TLS all together or not at all)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The listener's TLS files, when it speaks TLS.
    pub fn server_tls_files(&self) -> Option<hakv_tls::ServerTlsFiles> {
        Some(hakv_tls::ServerTlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    /// How this member calls its peers when members speak TLS: it trusts `tls_ca` and
    /// presents its own certificate.
    pub fn peer_tls_files(&self) -> Option<hakv_tls::ClientTlsFiles> {
        Some(hakv_tls::ClientTlsFiles {
            ca: self.tls_ca.clone(),
            cert: Some(self.tls_cert.clone()?),
            key: self.tls_key.clone(),
        })
    }

    /// Whether this node is a member of a Raft cluster (else it is a single node).
    pub fn is_clustered(&self) -> bool {
        !self.peers.is_empty()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        if self.peers.is_empty() {
            return match self.node_id {
                Some(_) => Err(invalid(
                    "peers",
                    "--node-id needs --peers listing every voter, this node included",
                )),
                None => Ok(()),
            };
        }
        let id = self
            .node_id
            .ok_or_else(|| invalid("node_id", "--peers needs --node-id"))?;
        if !self.peers.iter().any(|p| p.id == id) {
            return Err(invalid(
                "peers",
                format!("this node's id {id} is not among the peers"),
            ));
        }
        let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.peers.len() {
            return Err(invalid("peers", "a node id appears twice"));
        }
        if self.max_value_bytes > MAX_CLUSTER_VALUE_BYTES {
            return Err(invalid(
                "max_value_bytes",
                "at most 4MiB in a cluster: openraft 0.9 gives a log entry one heartbeat to reach \
                 a follower and be fsynced there (docs/cluster.md, Large values)",
            ));
        }
        if self.cluster_token.as_deref().is_none_or(|t| t.len() < 8) {
            return Err(invalid(
                "cluster_token",
                "a cluster needs a secret of at least 8 characters (--cluster-token or HAKV_CLUSTER_TOKEN)",
            ));
        }
        // It travels in an HTTP header: visible ASCII only (a control character used to
        // panic at start, when the header was built).
        if self
            .cluster_token
            .as_deref()
            .is_some_and(|t| !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "cluster_token",
                "the secret must be visible ASCII characters (no spaces or control characters)",
            ));
        }
        if self.heartbeat.is_zero() || self.election_timeout < self.heartbeat * 3 {
            return Err(invalid(
                "election_timeout",
                "must be at least three heartbeat intervals",
            ));
        }
        if self.leader_stall_timeout < self.election_timeout {
            return Err(invalid(
                "leader_stall_timeout",
                "must be at least the election timeout",
            ));
        }
        if self.snapshot_every == 0 {
            return Err(invalid("snapshot_every", "must be at least 1"));
        }
        Ok(())
    }

    /// This node's advertised address in the cluster, from `--peers`.
    pub fn own_peer(&self) -> Option<Peer> {
        self.node_id
            .and_then(|id| self.peers.iter().find(|p| p.id == id).cloned())
    }

    pub fn cache_config(&self) -> CacheConfig {
        CacheConfig {
            policy: self.cache_policy,
            capacity_bytes: self.cache_bytes,
            shards: self.cache_shards,
            // Uniform reads over a state far larger than the cache were 10–20 % faster with
            // no cache than with fill-on-every-miss (docs/benchmarks.md, Reads on a state far
            // larger than the caches).
            admission: hakv_cache::Admission::SecondMiss,
        }
    }

    /// Largest request body accepted: the value limit plus room for the JSON envelope.
    pub fn max_body_bytes(&self) -> usize {
        (self.max_value_bytes + 64 * 1024) as usize
    }
}

fn de_policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(serde::de::Error::custom)
}

/// The command line of `hakv serve`; every flag also reads an `HAKV_…` environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment override it).
    #[arg(long, env = "HAKV_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, IP or host name [default: 127.0.0.1:7379].
    #[arg(long, env = "HAKV_LISTEN", value_name = "ADDR", value_parser = hakv_api::resolve_addr)]
    pub listen: Option<SocketAddr>,
    /// Directory of the durable store [default: ./hakv-data].
    #[arg(long, env = "HAKV_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Read-cache eviction policy: lru, lfu, fifo or s3fifo [default: lru].
    #[arg(long, env = "HAKV_CACHE_POLICY", value_name = "POLICY")]
    pub cache_policy: Option<Policy>,
    /// Read-cache size, e.g. 64MiB; 0 disables the cache [default: 64MiB].
    #[arg(long, env = "HAKV_CACHE_BYTES", value_name = "SIZE", value_parser = parse_bytes)]
    pub cache_bytes: Option<u64>,
    /// Read-cache shards (a power of two) [default: 16].
    #[arg(long, env = "HAKV_CACHE_SHARDS", value_name = "N")]
    pub cache_shards: Option<usize>,
    /// Largest value accepted, as canonical JSON [default: 1MiB].
    #[arg(long, env = "HAKV_MAX_VALUE_BYTES", value_name = "SIZE", value_parser = parse_bytes)]
    pub max_value_bytes: Option<u64>,
    /// Open client connections; beyond this, new connections wait in the listen backlog [default: 4096].
    #[arg(long, env = "HAKV_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Requests being served at once; beyond this, requests get 503 with Retry-After [default: 1024].
    #[arg(long, env = "HAKV_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Writes waiting for the disk; beyond this, writes get 503 with Retry-After [default: 4096].
    #[arg(long, env = "HAKV_WRITE_QUEUE", value_name = "N")]
    pub write_queue: Option<usize>,
    /// Time limit for one request, e.g. 10s [default: 10s].
    #[arg(long, env = "HAKV_REQUEST_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
    /// On shutdown, how long in-flight requests may take to finish [default: 10s].
    #[arg(long, env = "HAKV_SHUTDOWN_GRACE", value_name = "DURATION", value_parser = parse_duration)]
    pub shutdown_grace: Option<Duration>,
    /// Block cache of the storage engine [default: 32MiB].
    #[arg(long, env = "HAKV_STORE_CACHE_BYTES", value_name = "SIZE", value_parser = parse_bytes)]
    pub store_cache_bytes: Option<u64>,
    /// Memory all scan pages being read or sent may hold at once; more scans wait for room,
    /// then get 503 [default: 256MiB].
    #[arg(long, env = "HAKV_SCAN_MEMORY", value_name = "SIZE", value_parser = parse_bytes)]
    pub scan_memory: Option<u64>,
    /// This node's id in a Raft cluster (with --peers).
    #[arg(long, env = "HAKV_NODE_ID", value_name = "N")]
    pub node_id: Option<u64>,
    /// Every voter of the cluster, this node included: ID=ADDR,ID=ADDR,…
    #[arg(long, env = "HAKV_PEERS", value_name = "ID=ADDR,…", value_parser = parse_peer_list)]
    pub peers: Option<PeerList>,
    /// Shared secret that peers authenticate with.
    #[arg(
        long,
        env = "HAKV_CLUSTER_TOKEN",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub cluster_token: Option<String>,
    /// Raft heartbeat interval [default: 50ms].
    #[arg(long, env = "HAKV_HEARTBEAT", value_name = "DURATION", value_parser = parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Raft election timeout: a leader unheard for this long (plus 10-33 %) is replaced; at
    /// least three heartbeats [default: 150ms].
    #[arg(long, env = "HAKV_ELECTION_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub election_timeout: Option<Duration>,
    /// How long a leader whose host still completes TCP handshakes (it may only be slow) may
    /// stay silent before it is replaced; at least the election timeout [default: 1s].
    #[arg(long, env = "HAKV_LEADER_STALL_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub leader_stall_timeout: Option<Duration>,
    /// Log entries between snapshots [default: 10000].
    #[arg(long, env = "HAKV_SNAPSHOT_EVERY", value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// Pace of a snapshot sent to a member that catches up, per second, e.g. 64MiB; 0 sends
    /// unpaced [default: 64MiB].
    #[arg(long, env = "HAKV_SNAPSHOT_RATE", value_name = "SIZE", value_parser = parse_bytes)]
    pub snapshot_rate: Option<u64>,
    /// Refuse writes (507 disk_full) while fewer bytes than this are free on the data
    /// directory's filesystem; they resume once space is freed [default: a tenth of the
    /// filesystem, at most 1GiB].
    #[arg(long, env = "HAKV_DISK_RESERVE", value_name = "SIZE", value_parser = parse_bytes)]
    pub disk_reserve: Option<u64>,
    /// The leader serves linearizable reads under a lease (true) or confirms each round of
    /// them with a heartbeat to a majority (false); leases assume no member's clock runs
    /// more than 1.5 times as fast as another's [default: true].
    #[arg(long, env = "HAKV_LEASE_READS", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub lease_reads: Option<bool>,
    /// Join an existing cluster: wait to be added with `hakv cluster add` instead of forming
    /// the cluster of --peers (which then only needs this member's own entry).
    #[arg(long, env = "HAKV_JOIN", value_parser = clap::builder::BoolishValueParser::new())]
    pub join: bool,
    /// Serve TLS with this certificate chain (PEM, leaf first); SIGHUP re-reads it. In a
    /// cluster every member does, and members call each other at https://.
    #[arg(long, env = "HAKV_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "HAKV_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: require every client and peer to present a certificate signed by this CA.
    #[arg(long, env = "HAKV_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// The CA that peers' certificates chain to [default: the system's trust roots].
    #[arg(long, env = "HAKV_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Bootstrap admin token (16+ visible characters): turns client authentication on.
    /// Prefer the variable: a flag shows in the process list.
    #[arg(long, env = "HAKV_ADMIN_TOKEN", value_name = "SECRET", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve on an address off loopback without client authentication (refused otherwise).
    #[arg(long, env = "HAKV_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,
}

impl ServeArgs {
    fn apply_to(&self, config: &mut ServeConfig) -> Result<(), ConfigError> {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { config.$field = v.clone(); } )* };
        }
        set!(
            listen,
            data_dir,
            cache_policy,
            cache_bytes,
            cache_shards,
            max_value_bytes,
            max_connections,
            max_in_flight,
            write_queue,
            request_timeout,
            shutdown_grace,
            store_cache_bytes,
            scan_memory,
            heartbeat,
            election_timeout,
            leader_stall_timeout,
            snapshot_every,
            snapshot_rate,
            lease_reads
        );
        if self.join {
            config.join = true;
        }
        if self.insecure {
            config.insecure = true;
        }
        if self.admin_token.is_some() {
            config.admin_token.clone_from(&self.admin_token);
        }
        for (flag, field) in [
            (&self.tls_cert, &mut config.tls_cert),
            (&self.tls_key, &mut config.tls_key),
            (&self.tls_client_ca, &mut config.tls_client_ca),
            (&self.tls_ca, &mut config.tls_ca),
        ] {
            if flag.is_some() {
                field.clone_from(flag);
            }
        }
        if self.disk_reserve.is_some() {
            config.disk_reserve = self.disk_reserve;
        }
        if let Some(PeerList(peers)) = &self.peers {
            config.peers = peers.clone();
        }
        if self.node_id.is_some() {
            config.node_id = self.node_id;
        }
        if self.cluster_token.is_some() {
            config.cluster_token = self.cluster_token.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn peers_may_be_named_by_host_name_which_is_kept_for_each_connection() {
        let peers = parse_peers("1=127.0.0.1:7501, 2=localhost:7502").unwrap();
        assert_eq!(peers[0].addr, "127.0.0.1:7501");
        assert_eq!(peers[1].addr, "localhost:7502");
        assert!(
            parse_peers("1=localhost")
                .unwrap_err()
                .contains("port is missing")
        );
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "cache_policy = \"lfu\"\ncache_bytes = \"8MiB\"\nrequest_timeout = \"250ms\""
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.path().to_owned()),
            cache_bytes: Some(1 << 20),
            ..ServeArgs::default()
        };
        let config = ServeConfig::load(&args).unwrap();
        assert_eq!(config.cache_policy, Policy::Lfu);
        assert_eq!(config.cache_bytes, 1 << 20);
        assert_eq!(config.request_timeout, Duration::from_millis(250));
        assert_eq!(config.listen, ServeConfig::default().listen);
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "cache_polcy = \"lfu\"").unwrap();
        let err = ServeConfig::from_file(file.path()).unwrap_err().to_string();
        assert!(err.contains("cache_polcy"), "{err}");

        let args = ServeArgs {
            max_in_flight: Some(0),
            ..ServeArgs::default()
        };
        let err = ServeConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains("max_in_flight"), "{err}");

        let args = ServeArgs {
            cache_shards: Some(3),
            ..ServeArgs::default()
        };
        assert!(ServeConfig::load(&args).is_err());
    }

    #[test]
    fn cluster_settings_are_checked_together() {
        let peers = parse_peers("1=127.0.0.1:7001, 2=127.0.0.1:7002,3=127.0.0.1:7003").unwrap();
        assert_eq!(
            peers[1],
            Peer {
                id: 2,
                addr: "127.0.0.1:7002".into()
            }
        );
        assert!(parse_peers("1:127.0.0.1:7001").is_err());
        assert!(parse_peers("x=127.0.0.1:7001").is_err());
        let cluster = |node_id, token: &str| ServeArgs {
            node_id,
            peers: Some(PeerList(peers.clone())),
            cluster_token: Some(token.into()),
            ..ServeArgs::default()
        };
        let config = ServeConfig::load(&cluster(Some(2), "long-enough-secret")).unwrap();
        assert!(config.is_clustered());
        assert_eq!(config.own_peer(), Some(peers[1].clone()));
        for (args, setting) in [
            (cluster(None, "long-enough-secret"), "node_id"),
            (cluster(Some(9), "long-enough-secret"), "peers"),
            (cluster(Some(1), "short"), "cluster_token"),
            (cluster(Some(1), "long-enough\u{7}-secret"), "cluster_token"),
            (cluster(Some(1), "long enough secret"), "cluster_token"),
            (
                ServeArgs {
                    max_value_bytes: Some(MAX_CLUSTER_VALUE_BYTES + 1),
                    ..cluster(Some(1), "long-enough-secret")
                },
                "max_value_bytes",
            ),
            (
                ServeArgs {
                    node_id: Some(1),
                    ..ServeArgs::default()
                },
                "peers",
            ),
        ] {
            let err = ServeConfig::load(&args).unwrap_err().to_string();
            assert!(err.contains(setting), "{err}");
        }
    }
}
