//! Running `hakv` subcommands to completion, alone or against a real `hakv serve` child on
//! `127.0.0.1:0` in a scratch directory (the CLI tests). Only PIDs started here are ever
//! signalled.

use super::ServerProcess;
use std::process::{Command, Output, Stdio};

/// A real `hakv serve` (see `support/process.rs`) in its own temporary directory.
pub struct Node {
    pub url: String,
    // Dropped in this order: the process first, then its directory.
    _server: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts `hakv serve` on `127.0.0.1:0` and waits (bounded) until it listens.
    pub fn start() -> Node {
        let dir = tempfile::tempdir().expect("a scratch dir");
        let server = ServerProcess::start(&dir.path().join("data"), &[]);
        Node {
            url: server.url(""),
            _server: server,
            _dir: dir,
        }
    }

    /// Runs `hakv ARGS --url <this node>` to completion.
    pub fn hakv(&self, args: &[&str]) -> Run {
        run(&[args, &["--url", &self.url]].concat())
    }
}

/// A finished `hakv` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
}

/// Runs `hakv ARGS` (no URL added); `HAKV_URL` is cleared so only flags count.
pub fn run(args: &[&str]) -> Run {
    run_with_env(args, &[])
}

/// [`run`] with extra environment variables.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_hakv"))
        .args(args)
        .env_remove("HAKV_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run hakv");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
