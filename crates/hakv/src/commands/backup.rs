//! `hakv backup` and `hakv restore`: a consistent online snapshot of a node, streamed to a
//! file and checked; and a new single node or first cluster member seeded from one.

use anyhow::{Context, bail};
use hakv_client::Client;
use hakv_raft::BasicNode;
use hakv_server::{Peer, parse_peers};
use hakv_store::{StateMachine, StoreConfig};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct BackupCommand {
    /// Base URL of any member (or a single node).
    #[arg(
        long,
        alias = "url",
        env = "HAKV_URL",
        default_value = "http://127.0.0.1:7379"
    )]
    target: String,
    /// File to write; must not exist yet.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The cluster secret (cluster members require it).
    #[arg(long, env = "HAKV_CLUSTER_TOKEN", hide_env_values = true)]
    cluster_token: Option<String>,
    /// Give up when the node sends nothing for this long (e.g. 30s).
    #[arg(long, env = "HAKV_TIMEOUT", default_value = "30s", value_parser = hakv_bench::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, clap::Args)]
pub struct RestoreCommand {
    /// A file written by `hakv backup`.
    file: PathBuf,
    /// The new node's data directory; must be empty or absent.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Seed the first member of a new cluster (with --peers and --cluster-token, the flags
    /// it will be started with) instead of a single node.
    #[arg(long, requires_all = ["peers", "cluster_token"])]
    node_id: Option<u64>,
    /// Every member of the new cluster, as ID=ADDR,ID=ADDR,...
    #[arg(long, value_name = "ID=ADDR,...")]
    peers: Option<String>,
    /// The new cluster's secret.
    #[arg(long, env = "HAKV_CLUSTER_TOKEN", hide_env_values = true)]
    cluster_token: Option<String>,
}

pub fn backup(command: BackupCommand) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    report(
        runtime
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(download(command))),
    )
}

pub fn restore(command: RestoreCommand) -> ExitCode {
    report(seed(command))
}

fn report(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hakv: {}", super::runtime::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn download(command: BackupCommand) -> anyhow::Result<String> {
    if command.out.exists() {
        bail!("{} exists; choose a new file", command.out.display());
    }
    let client = Client::new(&command.target, command.timeout)?;
    let partial = command.out.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("creating {}", partial.display()))?;
    let started = Instant::now();
    let mut shown = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let progress = |bytes: u64| {
        if shown.elapsed() >= Duration::from_millis(500) {
            shown = Instant::now();
            let mib = bytes as f64 / (1 << 20) as f64;
            let rate = mib / started.elapsed().as_secs_f64().max(0.001);
            let end = if tty { "\r" } else { "\n" };
            eprint!("backup: {mib:.1} MiB ({rate:.1} MiB/s){end}");
        }
    };
    let downloaded = client
        .backup(command.cluster_token.as_deref(), &mut file, progress)
        .await;
    let downloaded = match downloaded {
        Ok(downloaded) => downloaded,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e).context(format!("downloading a backup from {}", command.target));
        }
    };
    file.sync_all().await?;
    drop(file);
    let checked = check(&partial);
    let summary = match checked {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &command.out)?;
    Ok(format!(
        "backup of revision {}: {} keys, {} bytes, crc32 {:08x}, in {:.1}s -> {}",
        downloaded.revision,
        summary.keys,
        downloaded.bytes,
        summary.crc32,
        started.elapsed().as_secs_f64(),
        command.out.display()
    ))
}

/// Reads a backup file whole and checks its structure and checksum.
fn check(path: &Path) -> anyhow::Result<hakv_store::SnapshotSummary> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    StateMachine::verify_snapshot(BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("{} is not a good hakv backup", path.display()))
}

fn seed(command: RestoreCommand) -> anyhow::Result<String> {
    let summary = check(&command.file)?;
    let dir = &command.data_dir;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{} is not empty; restore into a new data directory",
            dir.display()
        );
    }
    let open = || File::open(&command.file).map(|f| BufReader::with_capacity(1 << 20, f));
    let what = match command.node_id {
        None => {
            let state = StateMachine::open(&StoreConfig::new(dir.clone(), 8 << 20))?;
            state.import_snapshot_from(open, &[], |_| {})?;
            // A backup of a cluster member carries its place in that cluster's log.
            state.remove_meta_prefix(b"raft/")?;
            state.persist()?;
            "a single node".to_string()
        }
        Some(node_id) => {
            let peers: Vec<Peer> = parse_peers(command.peers.as_deref().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("--peers: {e}"))?;
            let members: BTreeMap<u64, BasicNode> = peers
                .iter()
                .map(|p| (p.id, BasicNode::new(p.addr.to_string())))
                .collect();
            let token = command.cluster_token.unwrap_or_default();
            hakv_raft::restore::seed_member(dir, node_id, &members, &token, open)?;
            format!("member {node_id} of a new {}-member cluster", members.len())
        }
    };
    std::io::stdout().flush()?;
    Ok(format!(
        "restored revision {} ({} keys) into {} as {what}",
        summary.revision,
        summary.keys,
        dir.display()
    ))
}
