//! `hakv serve` as a child process on `127.0.0.1:0`: started, killed (SIGKILL or SIGTERM)
//! and restarted on the same data directory. Only the PIDs started here are ever signalled.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ServerProcess {
    /// Starts a node on `data_dir` with extra flags, and waits (bounded) until it listens.
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// [`start`](Self::start) with extra environment variables (e.g. libfaketime's).
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::spawn(data_dir, args, env)
    }

    fn spawn(data_dir: &Path, args: Vec<String>, env: Vec<(String, String)>) -> ServerProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .expect("open the node's log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hakv"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(&args)
            .envs(env.iter().map(|(k, v)| (k, v)));
        let (child, addr, _) = spawn_listening(command, log, &data_dir.with_extension("log"));
        ServerProcess {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            args,
            env,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hakv serve did not exit within 20s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same data directory with the same flags (a new port).
    pub fn restart(&mut self) {
        self.kill9();
        let next = Self::spawn(&self.data_dir, self.args.clone(), self.env.clone());
        // The old child is already reaped, so dropping it signals nothing.
        drop(std::mem::replace(self, next));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Any `hakv` subcommand that prints `listening on http://ADDR` once bound (`serve`,
/// `balance`), as a child process killed (this PID only) when dropped.
pub struct HakvProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// `hakv balance`'s admin listener (its second line, `admin on http://ADDR`).
    pub admin: Option<SocketAddr>,
}

impl HakvProcess {
    /// Starts `hakv ARGS…` with its log (stderr) in `log`, and waits (bounded) until it listens.
    pub fn spawn(args: &[&str], log: &Path) -> HakvProcess {
        let file = std::fs::File::create(log).expect("create the log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hakv"));
        command.args(args);
        let (child, addr, later) = spawn_listening(command, file, log);
        let admin = (args.first() == Some(&"balance")).then(|| {
            let line = later
                .recv_timeout(Duration::from_secs(10))
                .expect("hakv balance prints its admin address");
            line.strip_prefix("admin on http://")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
                .parse()
                .expect("a socket address")
        });
        HakvProcess { child, addr, admin }
    }

    /// `hakv balance`'s admin address.
    pub fn admin(&self) -> SocketAddr {
        self.admin.expect("a balancer")
    }
}

impl Drop for HakvProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` with stderr to `log` and waits (30 s at most) for its first stdout line,
/// `listening on http://ADDR`; the later lines come through the receiver (stdout is drained
/// so the child never blocks).
fn spawn_listening(
    mut command: Command,
    log: std::fs::File,
    log_path: &Path,
) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn hakv");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            panic!("hakv did not report its address; log:\n{log}");
        }
    };
    let addr = line
        .strip_prefix("listening on http://")
        .or_else(|| line.strip_prefix("listening on https://"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("a socket address");
    (child, addr, rx)
}
