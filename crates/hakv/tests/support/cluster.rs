//! A Raft cluster of real `hakv serve` processes on loopback: start, kill -9, pause
//! (SIGSTOP/SIGCONT), wipe and restart members, change the membership, and find the leader.
//! Only PIDs started here are ever signalled.

use super::http::Http;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-cluster-secret";

/// A loopback address whose port is free now and lies below the kernel's ephemeral range
/// (32768 and up on Linux). A port learned by binding port 0 comes from that range, and
/// between its release and the member's own bind, an outgoing connection of any other test
/// may be given it, and the member then cannot listen (the likely cause of one CI run where a
/// member never named a leader). Each port is handed out once per test process, and probed.
pub fn free_member_addr() -> SocketAddr {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test processes run one after another, but start each at its own place anyway.
    let start = std::process::id() % COUNT;
    for _ in 0..COUNT {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % COUNT;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return listener.local_addr().unwrap();
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT);
}

pub struct Member {
    pub id: u64,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Environment variables the member's process starts with (e.g. libfaketime's).
    pub env: Vec<(String, String)>,
    /// The network namespace the member runs in (`Cluster::prepare_in`), if any.
    pub netns: Option<String>,
    /// Starts with `--join`, waiting to be added (`Cluster::prepare_joiner`).
    pub joins: bool,
    child: Option<Child>,
}

pub struct Cluster {
    pub members: Vec<Member>,
    peers: String,
    extra: Vec<String>,
}

impl Cluster {
    /// Starts `n` members under `dir` and waits until they agree on a leader.
    pub fn start(dir: &Path, n: u64, extra: &[&str]) -> Cluster {
        let mut cluster = Cluster::prepare(dir, n, extra);
        cluster.start_all();
        cluster
    }

    /// Starts every member and waits until they agree on a leader.
    pub fn start_all(&mut self) {
        for id in 1..=self.members.len() as u64 {
            self.start_member(id);
        }
        self.leader();
    }

    /// Names the members in `--peers` by `name(id)` (with their ports) instead of their IPs.
    pub fn name_peers(&mut self, name: impl Fn(u64) -> String) {
        self.peers = self
            .members
            .iter()
            .map(|m| format!("{}={}:{}", m.id, name(m.id), m.addr.port()))
            .collect::<Vec<_>>()
            .join(",");
    }

    /// The `--peers` value of this cluster.
    pub fn peers(&self) -> &str {
        &self.peers
    }

    /// Chooses `n` members' addresses and data directories under `dir`, starting nothing.
    pub fn prepare(dir: &Path, n: u64, extra: &[&str]) -> Cluster {
        // Peers must know each other's address upfront.
        let addrs: Vec<SocketAddr> = (0..n).map(|_| free_member_addr()).collect();
        Cluster::with_addrs(dir, addrs, extra)
    }

    /// [`prepare`](Self::prepare) with member `i` in `net`'s namespace `i`, at its address.
    pub fn prepare_in(net: &super::Net, dir: &Path, n: u64, extra: &[&str]) -> Cluster {
        let addrs = (1..=n as u32).map(|i| net.addr(i, 7000)).collect();
        let mut cluster = Cluster::with_addrs(dir, addrs, extra);
        for member in &mut cluster.members {
            member.netns = Some(net.ns(member.id as u32));
        }
        cluster
    }

    fn with_addrs(dir: &Path, addrs: Vec<SocketAddr>, extra: &[&str]) -> Cluster {
        let peers = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let members = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| Member {
                id: i as u64 + 1,
                addr: *addr,
                data_dir: dir.join(format!("node-{}", i + 1)),
                env: Vec::new(),
                netns: None,
                joins: false,
                child: None,
            })
            .collect();
        Cluster {
            members,
            peers,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Chooses one more member's address and data directory (the next id), for a member
    /// that starts with `--join` and waits to be added; returns its id.
    pub fn prepare_joiner(&mut self, dir: &Path) -> u64 {
        let id = self.members.len() as u64 + 1;
        self.members.push(Member {
            id,
            addr: free_member_addr(),
            data_dir: dir.join(format!("node-{id}")),
            env: Vec::new(),
            netns: None,
            joins: true,
            child: None,
        });
        id
    }

    pub fn member(&self, id: u64) -> &Member {
        &self.members[id as usize - 1]
    }

    /// Member `id`, to set what it starts with.
    pub fn member_mut(&mut self, id: u64) -> &mut Member {
        &mut self.members[id as usize - 1]
    }

    pub fn start_member(&mut self, id: u64) {
        let (mut peers, extra) = (self.peers.clone(), self.extra.clone());
        let member = &mut self.members[id as usize - 1];
        if member.joins {
            // A joining member knows only itself; the cluster learns of it when it is added.
            peers = format!("{id}={}", member.addr);
        }
        assert!(member.child.is_none(), "member {id} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(member.data_dir.with_extension("log"))
            .unwrap();
        // `ip netns exec` execs the command in place: the child's PID is hakv's.
        let mut command = match &member.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_hakv")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_hakv")),
        };
        let child = command
            .arg("serve")
            .args([
                "--listen",
                &member.addr.to_string(),
                "--node-id",
                &id.to_string(),
                "--peers",
                &peers,
            ])
            .args(["--cluster-token", TOKEN, "--data-dir"])
            .arg(&member.data_dir)
            .args(member.joins.then_some("--join"))
            .args(&extra)
            // Namespaced members listen off loopback, on a bridge only this test reaches.
            .args(member.netns.as_ref().map(|_| "--insecure"))
            .envs(member.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn hakv serve");
        member.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Http::connect(member.addr).is_err() {
            assert!(Instant::now() < deadline, "member {id} did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.members[id as usize - 1].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Deletes what a stopped member's data directory holds (the directory stays: it may be
    /// a mount point), as a disk replaced under a member.
    pub fn wipe(&self, id: u64) {
        let member = self.member(id);
        assert!(member.child.is_none(), "member {id} is running");
        for entry in std::fs::read_dir(&member.data_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }

    /// Sends a membership change (`POST` to add member `id`, `DELETE` to remove it) to the
    /// leader that member `via` knows of, and retries (no leader, a leader that lost its
    /// place, a handover that did not finish, a member not yet listening) until the change is
    /// made or `within` has passed. Ok once it is made (an earlier attempt whose
    /// answer was lost counts: the member is then already there, or already gone); on
    /// failure, the last answer.
    pub fn change_membership(&self, via: u64, method: &str, id: u64, within: Duration) -> Result<(), String> {
        let auth = format!("Bearer {TOKEN}");
        let deadline = Instant::now() + within;
        let mut last = String::from("no leader known");
        loop {
            if let Some(leader) = self.leader_seen_by(via)
                && let Ok(mut http) = Http::connect(self.member(leader).addr)
            {
                let reply = match method {
                    "POST" => {
                        let body = format!(r#"{{"id": {id}, "addr": "{}"}}"#, self.member(id).addr);
                        http.send_json("POST", "/cluster/members", &body, &[("Authorization", &auth)])
                    }
                    _ => http.request(
                        method,
                        &format!("/cluster/members/{id}"),
                        &[("Authorization", &auth)],
                        None,
                    ),
                };
                match reply {
                    Ok(reply) if reply.status == 200 => return Ok(()),
                    Ok(reply)
                        if (method, reply.status) == ("POST", 409)
                            || (method, reply.status) == ("DELETE", 404) =>
                    {
                        return Ok(());
                    }
                    Ok(reply) => last = format!("{} from member {leader}: {}", reply.status, reply.text()),
                    Err(e) => last = format!("member {leader}: {e}"),
                }
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The running member's process id.
    pub fn pid(&self, id: u64) -> u32 {
        self.members[id as usize - 1]
            .child
            .as_ref()
            .expect("running")
            .id()
    }

    /// SIGSTOP (`pause = true`) or SIGCONT.
    pub fn pause(&self, id: u64, pause: bool) {
        let child = self.members[id as usize - 1].child.as_ref().expect("running");
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut child) = self.members[id as usize - 1].child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "member {id} exited with {status}");
                    return;
                }
                assert!(Instant::now() < deadline, "member {id} did not stop within 20s");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn running(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.id)
            .collect()
    }

    /// Creates `key` with the JSON `value` through the leader (asserting 201); returns the
    /// leader's id and the connection to it.
    pub fn create_via_leader(&self, key: &str, value: &str) -> (u64, Http) {
        let leader = self.leader();
        let mut http = Http::connect(self.member(leader).addr).unwrap();
        let body = format!(r#"{{"value": {value}}}"#);
        let reply = http
            .send_json("PUT", &format!("/data/{key}"), &body, &[])
            .unwrap();
        assert_eq!(reply.status, 201, "creating {key}: {}", reply.text());
        (leader, http)
    }

    /// The leader every running member reports (bounded wait).
    pub fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let views: Vec<Option<u64>> = self.running().iter().map(|id| self.leader_seen_by(*id)).collect();
            if let Some(Some(leader)) = views.first()
                && views.iter().all(|v| *v == Some(*leader))
                && self.running().contains(leader)
            {
                return *leader;
            }
            if Instant::now() >= deadline {
                panic!("no agreed leader: {views:?}{}", self.logs_of_silent(&views));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The last lines of the log of each running member that names no leader, to say why.
    fn logs_of_silent(&self, views: &[Option<u64>]) -> String {
        let mut said = String::new();
        for (id, view) in self.running().into_iter().zip(views) {
            if view.is_none() {
                let log = std::fs::read_to_string(self.member(id).data_dir.with_extension("log"))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                said.push_str(&format!("\n--- member {id}'s log ends:\n{}", tail.join("\n")));
            }
        }
        said
    }

    /// The leader id in `GET /cluster` of one member, if it answers (anything but a status
    /// in JSON, from a member starting or stopping, counts as no answer).
    pub fn leader_seen_by(&self, id: u64) -> Option<u64> {
        let mut http = Http::connect(self.member(id).addr).ok()?;
        let reply = http.get("/cluster").ok()?;
        let status: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
        status["leader"]["id"].as_u64()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                let _ = Command::new("kill")
                    .args(["-CONT", &child.id().to_string()])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
