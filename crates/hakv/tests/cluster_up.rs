//! `hakv cluster up` starts members and a balancer that serve at once; `hakv cluster add`
//! and `remove` change the membership of the running cluster; Ctrl-C stops every child.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::Http;

/// A base port with `count` free ports after it (probed by binding; loopback only). Each test
/// of this file passes its own `lane`, so that two running at once never probe the same run.
fn free_port_run(count: u16, lane: u16) -> u16 {
    for attempt in 0..200u16 {
        let base = 20_000 + (std::process::id() as u16 % 250) * 80 + lane * 40 + (attempt * 7) % 33;
        if (1..=count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no run of {count} free ports found");
}

/// A child that is stopped when the test ends, also when it fails: SIGTERM first (so
/// `cluster up` stops its own children), then SIGKILL.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The child of `parent` (from /proc: any of its threads may have started it) whose command
/// line contains `needle`.
fn child_of(parent: u32, needle: &str) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).ok()?;
    let children: Vec<u32> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    children.into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
    })
}

/// The number of members `hakv cluster status --url URL` reports.
fn members(url: &str) -> usize {
    let status = hakv(&["cluster", "status", "--url", url, "--json"], &[]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    view["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {view}"))
        .len()
}

fn hakv(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hakv"));
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

/// Starts `hakv cluster up` with its folder in `dir`, members from `base + 1`, the balancer on
/// `balancer` and `args`, and returns once it says it is up (bounded), with its stderr lines.
fn start_up(
    dir: &std::path::Path,
    base: u16,
    balancer: &str,
    args: &[&str],
) -> (Stopped, mpsc::Receiver<String>) {
    let mut up = Stopped(
        Command::new(env!("CARGO_BIN_EXE_hakv"))
            .args([
                "cluster",
                "up",
                "--base-port",
                &base.to_string(),
                "--listen",
                balancer,
            ])
            .args(args)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = |stream: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        rx
    };
    let stdout = lines(Box::new(up.0.stdout.take().unwrap()));
    let stderr = lines(Box::new(up.0.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stdout
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .unwrap_or_else(|_| panic!("cluster up {args:?} never said it is up"))
        .starts_with("hakv cluster is up")
    {}
    (up, stderr)
}

#[test]
fn cluster_up_starts_read_replicas_that_serve_reads_behind_the_balancer() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_port_run(6, 3); // 2 voters, 2 replicas, the balancer and its admin listener
    let balancer = format!("127.0.0.1:{}", base + 5);
    let (_up, _stderr) = start_up(
        dir.path(),
        base,
        &balancer,
        &["--nodes", "2", "--read-replicas", "2"],
    );
    let member = |id: u16| -> SocketAddr { format!("127.0.0.1:{}", base + id).parse().unwrap() };
    let view = Http::connect(member(1)).unwrap().get("/cluster").unwrap().json();
    let roles: Vec<(u64, String)> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_u64().unwrap(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        roles,
        [
            (1, "voter".into()),
            (2, "voter".into()),
            (3, "learner".into()),
            (4, "learner".into())
        ],
        "{view}"
    );
    let mut client = Http::connect(balancer.parse().unwrap()).unwrap();
    let put = client
        .send_json("PUT", "/data/hello", r#"{"value": "world"}"#, &[])
        .unwrap();
    assert_eq!(put.status, 201, "{}", put.text());
    for replica in [3, 4] {
        let read = Http::connect(member(replica))
            .unwrap()
            .get("/data/hello")
            .unwrap();
        assert_eq!(read.json()["data"], "world", "replica {replica}: {}", read.text());
    }
}

#[test]
fn cluster_up_serves_changes_membership_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_port_run(6, 0); // 3 members, a fourth, the balancer and its admin listener
    let balancer: SocketAddr = format!("127.0.0.1:{}", base + 5).parse().unwrap();
    let (mut up, err_rx) = start_up(dir.path(), base, &balancer.to_string(), &["--nodes", "3"]);

    // Through the balancer, and read back (linearizably) from a member.
    let mut client = Http::connect(balancer).unwrap();
    assert_eq!(
        client
            .send_json("PUT", "/data/hello", r#"{"value": "world"}"#, &[])
            .unwrap()
            .status,
        201
    );
    let member1: SocketAddr = format!("127.0.0.1:{}", base + 1).parse().unwrap();
    assert_eq!(
        Http::connect(member1).unwrap().get("/data/hello").unwrap().json()["data"],
        "world"
    );

    let url = format!("http://{member1}");
    assert_eq!(members(&url), 3);

    // A fourth member joins, catches up, and serves the data.
    let token_file = dir.path().join("cluster-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the cluster secret is readable by its owner only"
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    let addr4: SocketAddr = format!("127.0.0.1:{}", base + 4).parse().unwrap();
    let member4 = Stopped(
        Command::new(env!("CARGO_BIN_EXE_hakv"))
            .args([
                "serve",
                "--join",
                "--node-id",
                "4",
                "--listen",
                &addr4.to_string(),
            ])
            .args([
                "--peers",
                &format!("4={addr4}"),
                "--cluster-token",
                token,
                "--data-dir",
            ])
            .arg(dir.path().join("node-4"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // `cluster add` refuses an address nothing listens at yet (503 member_unreachable).
    support::eventually("member 4 listens", Duration::from_secs(20), || {
        Http::connect(addr4).is_ok()
    });
    let without_token = hakv(
        &[
            "cluster",
            "add",
            "--id",
            "4",
            "--addr",
            &addr4.to_string(),
            "--url",
            &url,
        ],
        &[],
    );
    assert!(
        !without_token.status.success(),
        "membership changes need the cluster secret"
    );
    let added = hakv(
        &[
            "cluster",
            "add",
            "--id",
            "4",
            "--addr",
            &addr4.to_string(),
            "--url",
            &url,
        ],
        &[("HAKV_CLUSTER_TOKEN", token)],
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_eq!(members(&url), 4);
    // A member that just joined may need a heartbeat to learn who leads (503 until then).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = Http::connect(addr4).unwrap().get("/data/hello").unwrap();
        if read.status == 200 {
            assert_eq!(read.json()["data"], "world");
            break;
        }
        assert_eq!(read.status, 503, "{}", read.text());
        assert!(
            Instant::now() < deadline,
            "the new member never served the read: {}",
            read.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let removed = hakv(
        &["cluster", "remove", "--id", "4", "--url", &url],
        &[("HAKV_CLUSTER_TOKEN", token)],
    );
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert_eq!(members(&url), 3);
    drop(member4);

    // Killing a member (to try failover) leaves the others serving, and `up` says how to
    // start it again.
    let node3 = child_of(up.0.id(), "--node-id\u{0}3\u{0}").expect("node 3 runs under cluster up");
    Command::new("kill")
        .args(["-KILL", &node3.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = err_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("cluster up said nothing about the killed member");
        if line.contains("node-3 exited") {
            assert!(line.contains("the others keep serving"), "{line}");
            break;
        }
    }
    assert!(up.0.try_wait().unwrap().is_none(), "cluster up is still running");
    let mut client = Http::connect(balancer).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .send_json("PUT", "/data/after-kill", r#"{"value": 1}"#, &[])
        .map(|r| r.status)
        .unwrap_or(0)
        != 201
    {
        assert!(
            Instant::now() < deadline,
            "no write through the balancer after the kill"
        );
        client = Http::connect(balancer).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }

    // `cluster status` asks every member and prints one table; the killed one is a row that
    // says it did not answer.
    let status = hakv(&["cluster", "status", "--url", &url], &[]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let table = String::from_utf8_lossy(&status.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("REACHABLE"),
        "{table}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" leader ")).count(),
        1,
        "{table}"
    );
    let row3 = lines
        .iter()
        .find(|l| l.starts_with('3'))
        .expect("a row for node 3");
    assert!(row3.contains("no: "), "{table}");

    // Ctrl-C stops every child and exits cleanly.
    Command::new("kill")
        .args(["-INT", &up.0.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = up.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "cluster up did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    assert!(Http::connect(member1).is_err(), "members are stopped");
    assert!(Http::connect(balancer).is_err(), "the balancer is stopped");
}

#[test]
fn cluster_up_fails_at_once_with_the_childs_error_when_a_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_port_run(5, 1);
    // Something already listens where the balancer should: README's own `serve`, say.
    let taken = TcpListener::bind(("127.0.0.1", base + 4)).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hakv"))
        .args(["cluster", "up", "--nodes", "3", "--base-port", &base.to_string()])
        .args(["--listen", &taken.local_addr().unwrap().to_string()])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up succeeded with its port taken");
    assert!(
        stderr.contains("balancer") && stderr.contains("in use"),
        "the child's error is not shown: {stderr}"
    );
    // It used to wait for its 30 s readiness deadline; exiting before it is what is checked.
    assert!(started.elapsed() < Duration::from_secs(25), "{stderr}");
}

#[test]
fn cluster_up_with_tls_serves_https_and_members_require_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_port_run(5, 2);
    let balancer = format!("127.0.0.1:{}", base + 4);
    let _up = start_up(dir.path(), base, &balancer, &["--tls", "--nodes", "3"]);

    let tls = dir.path().join("tls");
    let file = |name: &str| tls.join(name).to_str().unwrap().to_owned();
    for key in ["node-1-key.pem", "balancer-key.pem", "client-key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tls.join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let ca = file("ca.pem");
    let via_balancer = format!("https://{balancer}");
    let put = hakv(
        &[
            "put",
            "greeting",
            "\"hello\"",
            "--url",
            &via_balancer,
            "--ca",
            &ca,
        ],
        &[],
    );
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let member = format!("https://127.0.0.1:{}", base + 2);
    let identity = [
        "--ca",
        &ca,
        "--cert",
        &file("client.pem"),
        "--key",
        &file("client-key.pem"),
    ];
    let get = hakv(
        &[&["get", "greeting", "--url", &member][..], &identity].concat(),
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "\"hello\"");
    // Without a client certificate a member refuses the connection.
    let anonymous = hakv(&["get", "greeting", "--url", &member, "--ca", &ca], &[]);
    assert!(!anonymous.status.success());
    let status = hakv(
        &[&["cluster", "status", "--url", &member][..], &identity].concat(),
        &[],
    );
    let table = String::from_utf8_lossy(&status.stdout);
    assert_eq!(table.lines().filter(|l| l.ends_with("yes")).count(), 3, "{table}");
}
