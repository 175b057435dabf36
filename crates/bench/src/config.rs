//! `BenchConfig`: every knob of one load run, with defaults, clap/env parsing and `validate()`.

use std::time::Duration;

/// How keys are picked from the key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDist {
    /// Rank `k` (key `bench-{k-1}`) is picked with probability ∝ 1/k^s.
    Zipf,
    Uniform,
}

/// The HTTP method used for writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WriteMethod {
    /// The seed's `POST /data/{key}` (works against the seed program too).
    Post,
    Put,
}

/// What the characters of a written value are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFill {
    /// The same character throughout (the seed's shape; a storage engine compresses it to
    /// almost nothing, so the state on disk is far smaller than the values written).
    Repeat,
    /// Random letters and digits (up to 1024 different values, key `k` writing value `k` mod
    /// their number): values that do not compress, so the state on disk is as large as the
    /// values.
    Random,
}

/// One load run. Closed loop unless `rate` is set.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchConfig {
    /// Base URL of the service, http:// or https://, e.g. http://127.0.0.1:7379.
    #[arg(long, env = "HAKV_BENCH_TARGET", default_value = "http://127.0.0.1:7379")]
    pub target: String,
    /// CA certificate (PEM) that an https:// target's certificate must chain to [default:
    /// the system's trust roots].
    #[arg(long, env = "HAKV_BENCH_CA", value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Bearer token sent with every request, for targets with authentication on.
    #[arg(long, env = "HAKV_BENCH_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Concurrent keep-alive connections (each one request at a time).
    #[arg(long, short = 'c', env = "HAKV_BENCH_CONNECTIONS", default_value_t = 32)]
    pub connections: usize,
    /// Open loop: send this many requests per second in total, on a fixed schedule, and measure
    /// latency from each request's intended send time (corrects coordinated omission).
    #[arg(long, env = "HAKV_BENCH_RATE")]
    pub rate: Option<f64>,
    /// How long to load the target (e.g. 10s, 500ms, 2m; a bare number is seconds).
    #[arg(long, short = 'd', env = "HAKV_BENCH_DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests (whichever of this and --duration comes first).
    #[arg(long, short = 'n', env = "HAKV_BENCH_REQUESTS")]
    pub requests: Option<u64>,
    /// Share of requests that are writes, 0.0..=1.0.
    #[arg(long, env = "HAKV_BENCH_WRITE_RATIO", default_value_t = 0.1)]
    pub write_ratio: f64,
    /// Size of the key space: keys bench-0 .. bench-{N-1}.
    #[arg(long, env = "HAKV_BENCH_KEYS", default_value_t = 10_000)]
    pub keys: u64,
    #[arg(long, env = "HAKV_BENCH_KEY_DIST", value_enum, default_value_t = KeyDist::Zipf)]
    pub key_dist: KeyDist,
    /// Zipf exponent (with --key-dist zipf).
    #[arg(long, env = "HAKV_BENCH_ZIPF_S", default_value_t = 0.99)]
    pub zipf_s: f64,
    /// Bytes in each written value (a JSON string of this many characters).
    #[arg(long, env = "HAKV_BENCH_VALUE_SIZE", default_value_t = 100)]
    pub value_size: usize,
    /// What written values are made of: `repeat` (one character, compresses to almost
    /// nothing) or `random` (letters and digits that do not compress).
    #[arg(long, env = "HAKV_BENCH_VALUE_FILL", value_enum, default_value_t = ValueFill::Repeat)]
    pub value_fill: ValueFill,
    /// Write every key once before the measured run (not counted in the report's numbers).
    #[arg(long, env = "HAKV_BENCH_PREFILL", value_parser = clap::builder::BoolishValueParser::new())]
    pub prefill: bool,
    #[arg(long, env = "HAKV_BENCH_WRITE_METHOD", value_enum, default_value_t = WriteMethod::Post)]
    pub write_method: WriteMethod,
    /// Send reads with ?consistency=stale.
    #[arg(long, env = "HAKV_BENCH_STALE_READS", value_parser = clap::builder::BoolishValueParser::new())]
    pub stale_reads: bool,
    /// Per-request timeout, connecting included.
    #[arg(long, env = "HAKV_BENCH_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Seed of the key and operation choices; the same seed replays the same sequence per connection.
    #[arg(long, env = "HAKV_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Worker threads of the load generator (1 = one core, as `wrk -t1`).
    #[arg(long, env = "HAKV_BENCH_THREADS", default_value_t = 1)]
    pub threads: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            target: "http://127.0.0.1:7379".into(),
            ca: None,
            token: None,
            connections: 32,
            rate: None,
            duration: Duration::from_secs(10),
            requests: None,
            write_ratio: 0.1,
            keys: 10_000,
            key_dist: KeyDist::Zipf,
            zipf_s: 0.99,
            value_size: 100,
            value_fill: ValueFill::Repeat,
            prefill: false,
            write_method: WriteMethod::Post,
            stale_reads: false,
            timeout: Duration::from_secs(5),
            seed: 1,
            threads: 1,
        }
    }
}

/// Upper bounds that keep one run's memory and time finite.
pub const MAX_CONNECTIONS: usize = 10_000;
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
pub const MAX_VALUE_SIZE: usize = 64 << 20;
pub const MAX_THREADS: usize = 256;

impl BenchConfig {
    /// Refuses settings that make no sense, with a message naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
        }
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate.is_finite() && rate <= 1e8)
        {
            return Err("--rate must be a positive number of requests per second".into());
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err("--duration must be more than 0 and at most 24h".into());
        }
        if self.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.write_ratio) {
            return Err("--write-ratio must be between 0.0 and 1.0".into());
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if self.key_dist == KeyDist::Zipf && !(self.zipf_s > 0.0 && self.zipf_s.is_finite()) {
            return Err("--zipf-s must be a positive number".into());
        }
        if self.value_size > MAX_VALUE_SIZE {
            return Err(format!("--value-size must be at most {MAX_VALUE_SIZE} bytes"));
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err("--timeout must be more than 0 and at most 600s".into());
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(format!("--threads must be 1..={MAX_THREADS}"));
        }
        Ok(())
    }
}

pub use hakv_api::units::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: BenchConfig,
    }

    fn parse(args: &[&str]) -> Result<BenchConfig, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.config)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn flags_parse_and_defaults_match_default() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.connections, BenchConfig::default().connections);
        assert_eq!(config.duration, BenchConfig::default().duration);
        assert!(config.validate().is_ok());

        let config = parse(&[
            "--target",
            "http://h:1",
            "--rate",
            "5000",
            "-c",
            "8",
            "--duration",
            "3s",
            "--requests",
            "100",
            "--write-ratio",
            "0.5",
            "--keys",
            "7",
            "--key-dist",
            "uniform",
            "--value-size",
            "16",
            "--value-fill",
            "random",
            "--prefill",
            "--write-method",
            "put",
            "--seed",
            "9",
        ])
        .unwrap();
        assert_eq!(config.rate, Some(5000.0));
        assert_eq!(config.connections, 8);
        assert_eq!(config.requests, Some(100));
        assert_eq!(config.key_dist, KeyDist::Uniform);
        assert_eq!(config.write_method, WriteMethod::Put);
        assert_eq!(config.value_fill, ValueFill::Random);
        assert!(config.prefill);
        assert!(parse(&["--key-dist", "pareto"]).is_err());
    }

    #[test]
    fn validate_names_the_bad_flag() {
        let bad = |f: fn(&mut BenchConfig)| {
            let mut c = BenchConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.connections = 0).contains("--connections"));
        assert!(bad(|c| c.rate = Some(0.0)).contains("--rate"));
        assert!(bad(|c| c.write_ratio = 1.5).contains("--write-ratio"));
        assert!(bad(|c| c.zipf_s = 0.0).contains("--zipf-s"));
        assert!(bad(|c| c.keys = 0).contains("--keys"));
        assert!(bad(|c| c.requests = Some(0)).contains("--requests"));
    }
}
