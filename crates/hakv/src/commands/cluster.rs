//! `hakv cluster up`: a local cluster on one machine, for trying failover: N `hakv serve`
//! members and one `hakv balance` in front, as child processes with their data and logs in
//! one folder. Running it again on the same folder reuses the data (and the cluster secret).
//! Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period).

use super::cluster_tls::LocalPki;
use super::http_call::{Caller, scheme_of};
use super::runtime::{LogFormat, init_tracing, shutdown_signal};
use super::tls_args::TlsArgs;
use anyhow::{Context, bail};
use hakv_tls::ClientTls;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Start a local cluster and keep it running until Ctrl-C.
    Up(UpArgs),
    /// Ask every member for its view and print one table (id, role, state, term, applied,
    /// lag, reachable).
    Status(StatusArgs),
    /// Add a member: it joins as a learner, catches up, then becomes a voter (with
    /// --learner, it stays a learner: a read replica).
    Add {
        /// The new member's id.
        #[arg(long)]
        id: u64,
        /// The new member's address as the others reach it: an IP or a host name (kept as
        /// written and looked up at each connection), and its port.
        #[arg(long, value_parser = hakv_api::peer_addr)]
        addr: String,
        /// Keep it a learner: a read replica that serves reads and never votes (promote it
        /// later with `hakv cluster promote`).
        #[arg(long)]
        learner: bool,
        #[command(flatten)]
        member: MemberArgs,
    },
    /// Promote a learner to voter, once it has caught up.
    Promote {
        /// The learner's id.
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        member: MemberArgs,
    },
    /// Remove a member (the leader too: it steps down and the others elect a new one).
    Remove {
        /// The member's id.
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        member: MemberArgs,
    },
}

/// How to reach the cluster.
#[derive(Debug, clap::Args)]
pub struct MemberArgs {
    /// Any member of the cluster; membership changes are sent on to the leader it names.
    #[arg(long, env = "HAKV_URL", default_value = "http://127.0.0.1:7401")]
    url: String,
    /// The cluster secret (membership changes need it).
    #[arg(long, env = "HAKV_CLUSTER_TOKEN", hide_env_values = true)]
    cluster_token: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    member: MemberArgs,
    /// Print JSON (each member's whole GET /cluster answer) instead of a table.
    #[arg(long, env = "HAKV_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Number of members (voters).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// Read replicas besides the voters: learners that serve reads and never vote (as `hakv
    /// cluster add --learner` adds them), with the ids and ports after the voters'.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=6))]
    read_replicas: u64,
    /// Folder for every member's data and the logs.
    #[arg(long, default_value = "hakv-cluster")]
    dir: PathBuf,
    /// Member i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// Where the balancer listens: the one address clients need.
    #[arg(long, default_value = "127.0.0.1:7379", value_parser = hakv_api::resolve_addr)]
    listen: SocketAddr,
    /// Extra flags for every `hakv serve`, e.g. --serve-arg=--cache-policy=lfu.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Speak TLS everywhere: a local CA and certificates are made in DIR/tls (once), members
    /// require each other's certificates (mutual TLS), and the balancer serves https.
    #[arg(long)]
    tls: bool,
}

pub fn run(cmd: ClusterCommand) -> ExitCode {
    // `cluster up`'s children log as HAKV_LOG_FORMAT says; its own few lines stay text.
    init_tracing(LogFormat::Text);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match cmd {
        ClusterCommand::Up(args) => runtime.block_on(up(args)),
        ClusterCommand::Status(args) => runtime.block_on(async {
            let caller = Caller::new(args.member.tls.load()?.as_ref());
            super::cluster_status::show(&args.member.url, args.json, &caller).await
        }),
        ClusterCommand::Add {
            id,
            addr,
            learner,
            member,
        } => {
            let body = serde_json::json!({ "id": id, "addr": addr, "learner": learner }).to_string();
            runtime.block_on(change_membership(
                &member,
                "POST",
                "/cluster/members".into(),
                body,
            ))
        }
        ClusterCommand::Promote { id, member } => runtime.block_on(change_membership(
            &member,
            "POST",
            format!("/cluster/members/{id}/promote"),
            String::new(),
        )),
        ClusterCommand::Remove { id, member } => runtime.block_on(change_membership(
            &member,
            "DELETE",
            format!("/cluster/members/{id}"),
            String::new(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hakv cluster: {}", super::runtime::error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// A child process, what it is called in messages, and how to start it again by hand.
struct Member {
    name: String,
    child: Child,
    restart: String,
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let token = cluster_token(&args.dir)?;
    let exe = std::env::current_exe().context("cannot find the hakv binary")?;
    let addrs: Vec<SocketAddr> = (1..=args.nodes + args.read_replicas)
        .map(|id| SocketAddr::from(([127, 0, 0, 1], args.base_port + id as u16)))
        .collect();
    let (voters, replicas) = addrs.split_at(args.nodes as usize);
    let peers = voters
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");

    let pki = match args.tls {
        true => Some(LocalPki::ensure(&args.dir, addrs.len() as u64)?),
        false => None,
    };
    let mut members = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u64 + 1;
        // A read replica knows only itself and waits to be added (below).
        let replica = id > args.nodes;
        let own_peers = format!("{id}={addr}");
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .args([
                "--listen",
                &addr.to_string(),
                "--node-id",
                &id.to_string(),
                "--peers",
                if replica { &own_peers } else { &peers },
            ])
            .args(replica.then_some("--join"))
            .arg("--data-dir")
            .arg(args.dir.join(format!("node-{id}")))
            .args(pki.as_ref().map(|pki| pki.member_args(id)).unwrap_or_default())
            .args(&args.serve_args)
            .env("HAKV_CLUSTER_TOKEN", &token);
        members.push(spawn(command, &args.dir, &format!("node-{id}"))?);
    }
    // The balancer's admin API stays on loopback, on the port after the balancer's.
    let admin = admin_addr(args.listen);
    let mut balancer = Command::new(&exe);
    balancer.args(["balance", "--listen", &args.listen.to_string(), "--leader-aware"]);
    balancer.args(["--admin-listen", &admin.to_string()]);
    for addr in &addrs {
        balancer.args(["--backend", &addr.to_string()]);
    }
    balancer.args(pki.as_ref().map(|pki| pki.balancer_args()).unwrap_or_default());
    let client_tls = pki.as_ref().map(|pki| pki.client_tls()).transpose()?;
    members.push(spawn(balancer, &args.dir, "balancer")?);

    // A child that exits while the others start (a port taken, a bad flag) fails `up` at once,
    // with the end of its log.
    let outcome = tokio::select! {
        ready = async {
            wait_ready(voters, admin, client_tls.as_ref()).await?;
            add_read_replicas(voters, args.nodes + 1, replicas, &token, client_tls.as_ref()).await?;
            wait_ready(replicas, admin, client_tls.as_ref()).await
        } => ready,
        (index, exited) = first_exit(&mut members) => {
            let log = args.dir.join(format!("{}.log", members[index].name));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(anyhow::anyhow!("{exited} while the cluster was starting:\n  {}", tail.join("\n  ")))
        }
        _ = shutdown_signal() => Err(anyhow::anyhow!("interrupted before the cluster was ready")),
    };
    if let Err(err) = outcome {
        stop_all(&mut members).await;
        bail!("{err:#}; see the logs in {}", args.dir.display());
    }
    print_usage(&args, &addrs, pki.as_ref());
    // A member that exits (killed to try failover, say) leaves the others serving: say what
    // happened and how to start it again; stop everything on Ctrl-C or once none is left.
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    while !members.is_empty() {
        tokio::select! {
            _ = &mut shutdown => break,
            (index, exited) = first_exit(&mut members) => {
                let member = members.remove(index);
                eprintln!(
                    "hakv cluster: {exited}; the others keep serving. To start it again:\n  {}",
                    member.restart
                );
            }
        }
    }
    stop_all(&mut members).await;
    println!("stopped; data kept in {}", args.dir.display());
    Ok(())
}

/// Sends a membership change to the leader named by `member.url`'s `/cluster`.
async fn change_membership(
    member: &MemberArgs,
    method: &str,
    path: String,
    body: String,
) -> anyhow::Result<()> {
    let token = member
        .cluster_token
        .as_deref()
        .context("membership changes need --cluster-token or HAKV_CLUSTER_TOKEN")?;
    let caller = Caller::new(member.tls.load()?.as_ref());
    let url = member.url.trim_end_matches('/');
    let (status, view) = caller.request("GET", &format!("{url}/cluster"), None, "").await?;
    let view: serde_json::Value =
        serde_json::from_str(&view).with_context(|| format!("{url} answered {status}"))?;
    let leader = view["leader"]["addr"]
        .as_str()
        .context("no leader is known yet; try again shortly")?;
    let leader_url = format!("{}://{leader}{path}", scheme_of(url));
    // Adding a member waits until it has caught up (the server gives up after 10 minutes
    // and leaves it a learner), so allow that and a little more.
    let change = caller.request(method, &leader_url, Some(token), &body);
    let (status, answer) = tokio::time::timeout(Duration::from_secs(11 * 60), change)
        .await
        .context("no answer within 11 minutes")??;
    if !(200..300).contains(&status) {
        bail!("the leader at {leader} answered {status}: {}", answer.trim());
    }
    println!("{}", answer.trim());
    Ok(())
}

/// The cluster secret, created once per folder so a restart rejoins the same cluster.
fn cluster_token(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("cluster-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("cannot read /dev/urandom for a cluster secret")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Readable by its owner only: whoever holds it can act as a cluster member.
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(token.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

fn spawn(mut command: Command, dir: &Path, name: &str) -> anyhow::Result<Member> {
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let std_command = command.as_std();
    let mut restart = String::new();
    if std_command.get_envs().any(|(k, _)| k == "HAKV_CLUSTER_TOKEN") {
        restart.push_str(&format!(
            "HAKV_CLUSTER_TOKEN=$(cat {}) ",
            dir.join("cluster-token").display()
        ));
    }
    restart.push_str(&std_command.get_program().to_string_lossy());
    for arg in std_command.get_args() {
        restart.push(' ');
        restart.push_str(&arg.to_string_lossy());
    }
    restart.push_str(&format!(" >> {} 2>&1 &", log_path.display()));
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    Ok(Member {
        name: name.to_string(),
        child,
        restart,
    })
}

/// The balancer's admin address for a balancer listening at `listen` (its default).
fn admin_addr(listen: SocketAddr) -> SocketAddr {
    hakv_balancer::BalancerConfig {
        listen,
        ..Default::default()
    }
    .admin_addr()
}

/// Polls every member's `/ready` and the balancer's `/lb/status` on its admin listener
/// (bounded).
/// Adds each of `replicas` (ids from `first_id`) as a read replica through the leader that
/// the first voter names; one that is already a member (`up` run again over the same folder)
/// is left as it is.
async fn add_read_replicas(
    voters: &[SocketAddr],
    first_id: u64,
    replicas: &[SocketAddr],
    token: &str,
    tls: Option<&ClientTls>,
) -> anyhow::Result<()> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let caller = Caller::new(tls);
    for (id, addr) in (first_id..).zip(replicas) {
        let body = serde_json::json!({"id": id, "addr": addr.to_string(), "learner": true}).to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, view) = caller
                .request("GET", &format!("{scheme}://{}/cluster", voters[0]), None, "")
                .await?;
            let leader = serde_json::from_str::<serde_json::Value>(&view)
                .ok()
                .and_then(|view| view["leader"]["addr"].as_str().map(str::to_owned));
            let answer = match leader {
                Some(leader) => {
                    let url = format!("{scheme}://{leader}/cluster/members");
                    Some(caller.request("POST", &url, Some(token), &body).await?)
                }
                None => None,
            };
            match answer {
                Some((200, _)) | Some((409, _)) => break,
                _ if Instant::now() > deadline => {
                    bail!("read replica {id} at {addr} could not be added within 60s: {answer:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    Ok(())
}

async fn wait_ready(
    members: &[SocketAddr],
    balancer_admin: SocketAddr,
    tls: Option<&ClientTls>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut urls: Vec<String> = members.iter().map(|a| format!("{scheme}://{a}/ready")).collect();
    urls.push(format!("http://{balancer_admin}/lb/status"));
    let caller = Caller::new(tls);
    for url in urls {
        loop {
            if caller.is_ok(&url).await {
                break;
            }
            if Instant::now() > deadline {
                bail!("{url} did not answer 200 within 30s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn print_usage(args: &UpArgs, addrs: &[SocketAddr], pki: Option<&LocalPki>) {
    let scheme = if pki.is_some() { "https" } else { "http" };
    println!(
        "hakv cluster is up: {} members, data and logs in {}",
        addrs.len(),
        args.dir.display()
    );
    for (i, addr) in addrs.iter().enumerate() {
        let role = if i as u64 >= args.nodes {
            "  (read replica)"
        } else {
            ""
        };
        println!("  node {}  {scheme}://{addr}{role}", i + 1);
    }
    println!("  balancer {scheme}://{}  (send clients here)", args.listen);
    println!(
        "  balancer admin http://{}  (status, metrics, backends)",
        admin_addr(args.listen)
    );
    println!();
    println!("try:");
    match pki {
        None => {
            println!("  hakv put greeting '\"hello\"' --url http://{}", args.listen);
            println!("  hakv get greeting --url http://{}", addrs[0]);
            println!("  curl http://{}/cluster", addrs[0]);
        }
        Some(pki) => {
            let ca = pki.ca();
            println!(
                "  hakv put greeting '\"hello\"' --url https://{} --ca {}",
                args.listen,
                ca.display()
            );
            println!(
                "  hakv get greeting --url https://{} {}",
                addrs[0],
                pki.client_flags()
            );
            println!("  (members require a client certificate: mutual TLS)");
        }
    }
    println!("Ctrl-C stops every member; running it again reuses the data. A member that is");
    println!("killed leaves the others serving (try failover: kill the leader's process).");
}

/// Resolves when any child exits on its own: its index, and a message naming it.
async fn first_exit(members: &mut [Member]) -> (usize, String) {
    let waits = members.iter_mut().map(|m| {
        Box::pin(async move {
            let status = m.child.wait().await;
            format!(
                "{} exited ({})",
                m.name,
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
            )
        })
    });
    let (message, index, _) = futures_util::future::select_all(waits).await;
    (index, message)
}

/// SIGTERM to every child (by its PID), then SIGKILL to any still running after 15 s.
async fn stop_all(members: &mut [Member]) {
    for member in members.iter() {
        if let Some(pid) = member.child.id() {
            // SAFETY: `kill` with a PID of a child we started and have not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for member in members.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, member.child.wait()).await.is_err() {
            eprintln!("hakv cluster: {} did not stop in time; killing it", member.name);
            let _ = member.child.kill().await;
        }
    }
}
