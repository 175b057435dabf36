//! `hakv get|put|delete|scan|status`: the client commands, for people and for scripts.
//!
//! Exit codes: 0 ok, 1 key not found (get/delete), 2 usage error, 3 precondition failed (412),
//! 4 any other HTTP error or bad answer, 5 cannot connect or no answer in time.

use anyhow::Context as _;
use hakv_client::{
    Client, ClientError, Consistency, Deleted, Precondition, Revision, WriteMethod, WriteOptions,
};
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

const NOT_FOUND: u8 = 1;
const USAGE: u8 = 2;
const PRECONDITION_FAILED: u8 = 3;
const HTTP_ERROR: u8 = 4;
const UNREACHABLE: u8 = 5;

/// Shown under every client command's --help, so scripts' authors find it where they look.
const EXIT_CODES: &str = "Exit codes: 0 ok, 1 key not found, 2 usage error, 3 precondition failed (412), \
4 other HTTP error, 5 cannot connect or timed out";

/// Flags every client command takes.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Base URL of a node or balancer.
    #[arg(long, env = "HAKV_URL", default_value = "http://127.0.0.1:7379")]
    url: String,
    /// Print results (and errors) as JSON on stdout, for scripts.
    #[arg(long, env = "HAKV_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    pub(super) json: bool,
    /// Give up after this long (e.g. 5s, 500ms).
    #[arg(long, env = "HAKV_TIMEOUT", default_value = "10s", value_parser = hakv_bench::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    tls: super::tls_args::TlsArgs,
    /// Bearer token, for servers with authentication on (docs/security.md). Prefer the
    /// variable: a flag shows in the process list.
    #[arg(long, env = "HAKV_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Read one key: prints its value as JSON on stdout, its revision on stderr.
    #[command(after_help = EXIT_CODES)]
    Get {
        /// Any UTF-8; may contain '/'; not empty.
        #[arg(value_parser = non_empty_key)]
        key: String,
        /// Print the revision on stdout, on a line after the value.
        #[arg(long)]
        show_revision: bool,
        /// Read from the local replica without confirming leadership (?consistency=stale).
        #[arg(long)]
        stale: bool,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Write one key. VALUE is taken as JSON if it parses as JSON (42, true, {"a":1}, "\"s\""),
    /// else as a string.
    #[command(after_help = EXIT_CODES)]
    Put {
        /// Any UTF-8; may contain '/'; not empty.
        #[arg(value_parser = non_empty_key)]
        key: String,
        /// JSON (42, true, {"a":1}, "\"text\"") or, if it does not parse, a plain string.
        value: String,
        /// Always store VALUE as a JSON string, even if it parses as JSON.
        #[arg(long)]
        raw_string: bool,
        /// The key expires this long after the write: whole seconds, with a unit or not
        /// (60, 60s, 10m, 1h30m).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<u64>,
        /// Only write if the key's revision is still REV (compare-and-set).
        #[arg(long, value_name = "REV", conflicts_with = "if_absent")]
        if_match: Option<u64>,
        /// Only write if the key does not exist.
        #[arg(long)]
        if_absent: bool,
        /// Use the seed's POST instead of PUT.
        #[arg(long)]
        post: bool,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Delete one key.
    #[command(after_help = EXIT_CODES)]
    Delete {
        #[arg(value_parser = non_empty_key)]
        key: String,
        /// Only delete if the key's revision is still REV.
        #[arg(long, value_name = "REV")]
        if_match: Option<u64>,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// List keys in order: one "key<TAB>value" line each (JSON Lines with --json).
    #[command(after_help = EXIT_CODES)]
    Scan {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Stop after this many keys (default: all).
        #[arg(long)]
        limit: Option<u64>,
        /// Keys fetched per request (1..=1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
        page_size: u64,
        #[arg(long)]
        stale: bool,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Show /health, /ready and /cluster (when present). Exit 0 when healthy and ready.
    #[command(after_help = EXIT_CODES)]
    Status {
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Manage client tokens (needs an admin token in --token).
    #[command(subcommand)]
    Token(super::token::TokenCommand),
}

/// How a command ended: what to print and which exit code.
pub(super) enum Outcome {
    Ok,
    Fail(u8),
}

pub fn run(cmd: ClientCommand) -> ExitCode {
    let args = match &cmd {
        ClientCommand::Get { args, .. }
        | ClientCommand::Put { args, .. }
        | ClientCommand::Delete { args, .. }
        | ClientCommand::Scan { args, .. }
        | ClientCommand::Status { args } => args,
        ClientCommand::Token(action) => action.args(),
    };
    let json = args.json;
    let tls = match args.tls.load() {
        Ok(tls) => tls,
        Err(e) => return report_error(&e.into(), json, USAGE),
    };
    let client =
        Client::with_tls(&args.url, args.timeout, tls.as_ref()).and_then(|client| match &args.token {
            Some(token) => client.with_token(token),
            None => Ok(client),
        });
    let client = match client {
        Ok(client) => client,
        Err(e) => return report_error(&e, json, USAGE),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hakv: cannot start the runtime: {e}");
            return ExitCode::from(HTTP_ERROR);
        }
    };
    match runtime.block_on(execute(&client, cmd)) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Fail(code)) => ExitCode::from(code),
        Err(e) => match e.downcast_ref::<ClientError>() {
            Some(client_error) => report_error(client_error, json, exit_code(client_error)),
            None => {
                eprintln!("hakv: {}", super::runtime::error_chain(&e));
                ExitCode::from(HTTP_ERROR)
            }
        },
    }
}

fn exit_code(error: &ClientError) -> u8 {
    match error {
        ClientError::InvalidUrl { .. } => USAGE,
        ClientError::PreconditionFailed { .. } => PRECONDITION_FAILED,
        ClientError::Connect { .. } | ClientError::Timeout { .. } => UNREACHABLE,
        // The server's own timeout: for a write, the outcome is unknown, as when no answer came.
        ClientError::Status { status: 504, .. } => UNREACHABLE,
        _ => HTTP_ERROR,
    }
}

/// A key argument: the API has no empty key, so `hakv get ''` is a usage error (exit 2).
fn non_empty_key(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("a key cannot be empty".into());
    }
    Ok(text.to_owned())
}

/// Errors go to stderr for people; with --json also as an object on stdout for scripts.
fn report_error(error: &ClientError, json: bool, code: u8) -> ExitCode {
    eprintln!("hakv: {error}");
    if json {
        let mut body = json!({ "error": error.to_string(), "retryable": error.is_retryable() });
        match error {
            ClientError::Status { status, code, .. } => {
                body["status"] = json!(status);
                body["code"] = json!(code);
            }
            ClientError::PreconditionFailed { current } => {
                body["status"] = json!(412);
                body["code"] = json!("precondition_failed");
                body["current_revision"] = json!(current);
            }
            ClientError::Connect { .. } => body["code"] = json!("connect"),
            ClientError::Timeout { .. } => body["code"] = json!("timeout"),
            _ => {}
        }
        println!("{body}");
    }
    ExitCode::from(code)
}

/// VALUE as JSON when it parses, else as a string (always a string with --raw-string).
pub fn parse_value(text: &str, raw_string: bool) -> Value {
    if raw_string {
        return Value::String(text.to_string());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn revision_text(revision: Option<Revision>) -> String {
    revision.map_or("unknown".into(), |r| r.to_string())
}

async fn execute(client: &Client, cmd: ClientCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ClientCommand::Token(action) => {
            super::token::execute(client, action).await?;
        }
        ClientCommand::Get {
            key,
            show_revision,
            stale,
            args,
        } => {
            let consistency = if stale {
                Consistency::Stale
            } else {
                Consistency::Linearizable
            };
            match client.get(&key, consistency).await? {
                Some(entry) if args.json => {
                    println!(
                        "{}",
                        json!({ "key": key, "data": entry.data, "revision": entry.revision })
                    );
                }
                Some(entry) => {
                    println!("{}", entry.data);
                    if show_revision {
                        println!("{}", revision_text(entry.revision));
                    } else {
                        eprintln!("revision {}", revision_text(entry.revision));
                    }
                }
                None => return Ok(not_found(&key, args.json)),
            }
        }
        ClientCommand::Put {
            key,
            value,
            raw_string,
            ttl,
            if_match,
            if_absent,
            post,
            args,
        } => {
            let options = WriteOptions {
                ttl_seconds: ttl,
                precondition: match (if_match, if_absent) {
                    (Some(rev), _) => Precondition::IfMatch(Revision(rev)),
                    (None, true) => Precondition::IfAbsent,
                    (None, false) => Precondition::None,
                },
                method: if post { WriteMethod::Post } else { WriteMethod::Put },
            };
            let written = client
                .put(&key, &parse_value(&value, raw_string), &options)
                .await?;
            if args.json {
                println!(
                    "{}",
                    json!({ "key": key, "created": written.created, "revision": written.revision })
                );
            } else {
                let what = if written.created { "created" } else { "replaced" };
                println!("{what} {key} at revision {}", revision_text(written.revision));
            }
        }
        ClientCommand::Delete { key, if_match, args } => {
            let precondition = if_match.map_or(Precondition::None, |r| Precondition::IfMatch(Revision(r)));
            match client.delete(&key, precondition).await? {
                Deleted::Deleted { revision } if args.json => {
                    println!("{}", json!({ "key": key, "deleted": true, "revision": revision }));
                }
                Deleted::Deleted { revision } => {
                    println!("deleted {key} at revision {}", revision_text(revision));
                }
                Deleted::NotFound => return Ok(not_found(&key, args.json)),
            }
        }
        ClientCommand::Scan {
            prefix,
            limit,
            page_size,
            stale,
            args,
        } => {
            let consistency = if stale {
                Consistency::Stale
            } else {
                Consistency::Linearizable
            };
            scan(client, &prefix, limit, page_size, consistency, args.json).await?;
        }
        ClientCommand::Status { args } => {
            let status = client.status().await?;
            if args.json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                let probes = [Some(&status.health), Some(&status.ready), status.cluster.as_ref()];
                for probe in probes.into_iter().flatten() {
                    println!("{:<9}{} {}", probe.path, probe.status, probe.body);
                }
            }
            if !(status.health.ok() && status.ready.ok()) {
                return Ok(Outcome::Fail(HTTP_ERROR));
            }
        }
    }
    Ok(Outcome::Ok)
}

fn not_found(key: &str, json: bool) -> Outcome {
    eprintln!("hakv: key not found: {key}");
    if json {
        println!(
            "{}",
            json!({ "error": "Key not found", "code": "key_not_found", "status": 404, "retryable": false, "key": key })
        );
    }
    Outcome::Fail(NOT_FOUND)
}

/// Prints pages as they arrive, following `next_cursor` until the end or `limit`.
async fn scan(
    client: &Client,
    prefix: &str,
    limit: Option<u64>,
    page_size: u64,
    consistency: Consistency,
    json: bool,
) -> anyhow::Result<()> {
    let mut printed = 0u64;
    let mut cursor: Option<String> = None;
    let mut out = std::io::stdout().lock();
    loop {
        let want = limit.map_or(page_size, |l| (l - printed).min(page_size));
        if want == 0 {
            return Ok(());
        }
        let page = client
            .scan_page(prefix, want as usize, cursor.as_deref(), consistency)
            .await?;
        for item in page.items.iter().take(want as usize) {
            if json {
                writeln!(out, "{}", serde_json::to_string(item)?)?;
            } else {
                writeln!(out, "{}\t{}", item.key, item.data)?;
            }
            printed += 1;
        }
        match page.next_cursor {
            // A cursor that does not move would loop forever; the server must advance it.
            Some(next) if Some(&next) != cursor.as_ref() && !page.items.is_empty() => cursor = Some(next),
            Some(_) => anyhow::bail!("the server returned a scan cursor that does not advance"),
            None => return Ok(()),
        }
        out.flush().context("writing to stdout")?;
    }
}

/// A TTL given as a duration with a unit or as seconds: whole seconds, at least one.
fn parse_ttl(text: &str) -> Result<u64, String> {
    let duration = hakv_bench::parse_duration(text)?;
    if duration.subsec_nanos() != 0 || duration.as_secs() == 0 {
        return Err(format!(
            "{text:?}: a TTL is a whole number of seconds, at least 1"
        ));
    }
    Ok(duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ClientCommand,
    }

    #[test]
    fn a_servers_504_exits_like_no_answer() {
        let status = |status| ClientError::Status {
            status,
            code: None,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(exit_code(&status(504)), UNREACHABLE);
        assert_eq!(exit_code(&status(503)), HTTP_ERROR);
    }

    #[test]
    fn values_are_json_when_they_parse() {
        assert_eq!(parse_value("42", false), json!(42));
        assert_eq!(parse_value("{\"a\":[1,true]}", false), json!({"a": [1, true]}));
        assert_eq!(parse_value("null", false), Value::Null);
        assert_eq!(parse_value("\"quoted\"", false), json!("quoted"));
        assert_eq!(parse_value("hello world", false), json!("hello world"));
        assert_eq!(parse_value("{broken", false), json!("{broken"));
        assert_eq!(parse_value("42", true), json!("42"));
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["hakv", "put", "k", "v", "--ttl", "5", "--if-match", "3"]).unwrap();
        let minute = Cli::try_parse_from(["hakv", "put", "k", "v", "--ttl", "1m"]).unwrap();
        assert!(matches!(minute.command, ClientCommand::Put { ttl: Some(60), .. }));
        assert!(Cli::try_parse_from(["hakv", "put", "k", "v", "--ttl", "1500ms"]).is_err());
        assert!(matches!(
            cli.command,
            ClientCommand::Put {
                ttl: Some(5),
                if_match: Some(3),
                ..
            }
        ));
        let conflict = Cli::try_parse_from(["hakv", "put", "k", "v", "--if-match", "3", "--if-absent"]);
        assert_eq!(conflict.err().unwrap().exit_code(), 2);
        let scan = Cli::try_parse_from(["hakv", "scan", "--page-size", "0"]);
        assert!(scan.is_err());
        let get = Cli::try_parse_from(["hakv", "get", "a/b c", "--url", "http://h:1", "--json"]).unwrap();
        assert!(
            matches!(get.command, ClientCommand::Get { ref key, ref args, .. } if key == "a/b c" && args.json && args.url == "http://h:1")
        );
    }
}
