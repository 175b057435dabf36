//! Command-line flags (each also read from a `HAKV_BALANCE_*` environment variable) and how they
//! combine with `--config FILE`: the file first, then every flag that was given on top.

use crate::algorithm::Algorithm;
use crate::config::{BackendSpec, BalancerConfig, ConfigError};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, clap::Args)]
pub struct BalanceArgs {
    /// TOML file with any of the settings below (and more: see docs/balancer.md); flags win.
    /// SIGHUP re-reads it.
    #[arg(long, env = "HAKV_BALANCE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to accept clients on [default: 127.0.0.1:7380].
    #[arg(long, env = "HAKV_BALANCE_LISTEN", value_parser = hakv_api::resolve_addr)]
    pub listen: Option<SocketAddr>,
    /// Serve /lb/* and /metrics only on this address instead of the main one.
    #[arg(long, env = "HAKV_BALANCE_ADMIN_LISTEN", value_parser = hakv_api::resolve_addr)]
    pub admin_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` for admin changes (POST, PATCH, DELETE on /lb/*).
    /// Prefer the variable: a flag shows in the process list.
    #[arg(long, env = "HAKV_BALANCE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A backend, HOST:PORT[=WEIGHT]; repeat the flag (or comma-separate in the variable).
    #[arg(long = "backend", env = "HAKV_BALANCE_BACKENDS", value_delimiter = ',')]
    pub backends: Vec<BackendSpec>,
    /// How to choose a backend [default: round-robin].
    #[arg(long, env = "HAKV_BALANCE_ALGORITHM", value_enum)]
    pub algorithm: Option<Algorithm>,
    /// Worker threads; 0 = one per core, 1 = single-threaded [default: 0].
    #[arg(long, env = "HAKV_BALANCE_THREADS")]
    pub threads: Option<usize>,
    /// Health check period in milliseconds, or a duration (1s) [default: 1000].
    #[arg(long, env = "HAKV_BALANCE_HEALTH_INTERVAL_MS", value_parser = hakv_api::units::parse_millis)]
    pub health_interval_ms: Option<u64>,
    /// Health check timeout in milliseconds, or a duration [default: 500].
    #[arg(long, env = "HAKV_BALANCE_HEALTH_TIMEOUT_MS", value_parser = hakv_api::units::parse_millis)]
    pub health_timeout_ms: Option<u64>,
    /// Good probes in a row to mark a backend up [default: 2].
    #[arg(long, env = "HAKV_BALANCE_RISE")]
    pub rise: Option<u32>,
    /// Failed probes in a row to mark a backend down [default: 3].
    #[arg(long, env = "HAKV_BALANCE_FALL")]
    pub fall: Option<u32>,
    /// Attempts per request, first try included [default: 3].
    #[arg(long, env = "HAKV_BALANCE_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Retries allowed as a fraction of requests [default: 0.2].
    #[arg(long, env = "HAKV_BALANCE_RETRY_BUDGET")]
    pub retry_budget: Option<f64>,
    /// Per-attempt timeout to response headers, in milliseconds, or a duration [default: 5000].
    #[arg(long, env = "HAKV_BALANCE_ATTEMPT_TIMEOUT_MS", value_parser = hakv_api::units::parse_millis)]
    pub attempt_timeout_ms: Option<u64>,
    /// Timeout over all attempts, in milliseconds, or a duration [default: 15000].
    #[arg(long, env = "HAKV_BALANCE_TOTAL_TIMEOUT_MS", value_parser = hakv_api::units::parse_millis)]
    pub total_timeout_ms: Option<u64>,
    /// Client connections at most [default: 10000].
    #[arg(long, env = "HAKV_BALANCE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests in progress at most; more are shed with 503 [default: 10000].
    #[arg(long, env = "HAKV_BALANCE_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Send writes to the leader named by the backends' GET /cluster.
    #[arg(long, env = "HAKV_BALANCE_LEADER_AWARE", value_parser = clap::builder::BoolishValueParser::new())]
    pub leader_aware: bool,
    /// With --leader-aware: send reads to the other backends (followers and read replicas)
    /// while any of them is available, so the leader's queue stays short for writes and
    /// for the read indexes followers ask it for.
    #[arg(long, env = "HAKV_BALANCE_READS_OFF_LEADER", value_parser = clap::builder::BoolishValueParser::new())]
    pub reads_off_leader: bool,
    /// Seed for the random choices (p2c, backoff jitter); 0 = from the clock [default: 0].
    #[arg(long, env = "HAKV_BALANCE_SEED")]
    pub seed: Option<u64>,
    /// Serve https on --listen with this certificate chain (PEM); SIGHUP re-reads it.
    #[arg(long, env = "HAKV_BALANCE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "HAKV_BALANCE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Call backends at https://, checking their certificates against this CA (PEM).
    #[arg(long, env = "HAKV_BALANCE_BACKEND_CA", value_name = "FILE")]
    pub backend_ca: Option<PathBuf>,
    /// Present this certificate to backends that require one (mutual TLS).
    #[arg(long, env = "HAKV_BALANCE_BACKEND_CERT", value_name = "FILE")]
    pub backend_cert: Option<PathBuf>,
    /// The private key of --backend-cert (PEM).
    #[arg(long, env = "HAKV_BALANCE_BACKEND_KEY", value_name = "FILE")]
    pub backend_key: Option<PathBuf>,
}

impl BalanceArgs {
    /// The file (if any) with the flags on top, validated.
    pub fn to_config(&self) -> Result<BalancerConfig, ConfigError> {
        let mut c = match &self.config {
            Some(path) => BalancerConfig::from_file(path)?,
            None => BalancerConfig::default(),
        };
        fn set<T: Clone>(slot: &mut T, flag: &Option<T>) {
            if let Some(v) = flag {
                *slot = v.clone();
            }
        }
        set(&mut c.listen, &self.listen);
        if self.admin_listen.is_some() {
            c.admin_listen = self.admin_listen;
        }
        if self.admin_token.is_some() {
            c.admin_token = self.admin_token.clone();
        }
        if !self.backends.is_empty() {
            c.backends = self.backends.clone();
        }
        set(&mut c.algorithm, &self.algorithm);
        set(&mut c.threads, &self.threads);
        set(&mut c.health.interval_ms, &self.health_interval_ms);
        set(&mut c.health.timeout_ms, &self.health_timeout_ms);
        set(&mut c.health.rise, &self.rise);
        set(&mut c.health.fall, &self.fall);
        set(&mut c.retry.max_attempts, &self.max_attempts);
        set(&mut c.retry.budget_ratio, &self.retry_budget);
        set(&mut c.timeouts.attempt_ms, &self.attempt_timeout_ms);
        set(&mut c.timeouts.total_ms, &self.total_timeout_ms);
        set(&mut c.limits.max_connections, &self.max_connections);
        set(&mut c.limits.max_in_flight, &self.max_in_flight);
        set(&mut c.seed, &self.seed);
        for (slot, flag) in [
            (&mut c.tls.cert, &self.tls_cert),
            (&mut c.tls.key, &self.tls_key),
            (&mut c.tls.backend_ca, &self.backend_ca),
            (&mut c.tls.backend_cert, &self.backend_cert),
            (&mut c.tls.backend_key, &self.backend_key),
        ] {
            if flag.is_some() {
                slot.clone_from(flag);
            }
        }
        c.leader_aware |= self.leader_aware;
        c.reads_off_leader |= self.reads_off_leader;
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BalanceArgs,
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("hakv-lb-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lb.toml");
        std::fs::write(
            &file,
            "backends = [\"127.0.0.1:1\"]\nalgorithm = \"p2c\"\n[health]\nrise = 4\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "x",
            "--config",
            file.to_str().unwrap(),
            "--algorithm",
            "key-hash",
            "--fall",
            "9",
        ])
        .unwrap();
        let c = cli.args.to_config().unwrap();
        assert_eq!(c.algorithm, Algorithm::KeyHash);
        assert_eq!((c.health.rise, c.health.fall), (4, 9));
        assert_eq!(c.backends.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_flags_are_refused_with_a_reason() {
        let r = Cli::try_parse_from(["x", "--backend", "nope"]);
        assert!(r.unwrap_err().to_string().contains("HOST:PORT"));
        let r = Cli::try_parse_from(["x", "--algorithm", "random"]);
        assert!(r.is_err());
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert!(matches!(cli.args.to_config(), Err(ConfigError::NoBackends)));
    }

    #[test]
    fn millisecond_flags_take_durations_and_addresses_take_host_names() {
        let cli = Cli::try_parse_from([
            "x",
            "--backend",
            "127.0.0.1:1",
            "--health-interval-ms",
            "2s",
            "--health-timeout-ms",
            "500",
            "--total-timeout-ms",
            "1m",
            "--listen",
            "localhost:7380",
        ])
        .unwrap();
        let c = cli.args.to_config().unwrap();
        assert_eq!(
            (c.health.interval_ms, c.health.timeout_ms, c.timeouts.total_ms),
            (2000, 500, 60_000)
        );
        assert!(c.listen.ip().is_loopback());
    }

    #[test]
    fn a_setting_out_of_range_is_named_by_its_key_and_its_flag() {
        let cli =
            Cli::try_parse_from(["x", "--backend", "127.0.0.1:1", "--health-timeout-ms", "5000"]).unwrap();
        let e = cli.args.to_config().unwrap_err().to_string();
        assert!(
            e.starts_with("health.timeout_ms (--health-timeout-ms) must be"),
            "{e}"
        );
        let cli = Cli::try_parse_from(["x", "--backend", "127.0.0.1:1", "--max-attempts", "0"]).unwrap();
        let e = cli.args.to_config().unwrap_err().to_string();
        assert!(
            e.starts_with("retry.max_attempts (--max-attempts) must be"),
            "{e}"
        );
    }
}
