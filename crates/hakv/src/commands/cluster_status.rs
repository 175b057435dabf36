//! `hakv cluster status`: asks every member it can learn of (from the member at `--url`) for
//! its own view, and prints one table: id, address, role, state, term, applied and commit
//! index, lag behind the leader, and whether it answered. A member that is down is a row
//! that says so, not a failed command. `--json` prints the same as JSON, with each member's
//! whole `GET /cluster` answer.

use super::http_call::{Caller, scheme_of};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::Duration;

/// How long one member may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// One member as seen from the cluster and by itself.
struct Row {
    id: u64,
    addr: String,
    role: String,
    /// Its own `/cluster` answer, or why there is none.
    view: Result<Value, String>,
}

pub(super) async fn show(url: &str, as_json: bool, caller: &Caller) -> anyhow::Result<()> {
    let url = url.trim_end_matches('/');
    let first = ask(caller, url).await.with_context(|| format!("asking {url}"))?;
    if first["mode"] == "single" {
        bail!("{url} is a single node, not a cluster member");
    }
    let members = first["members"].as_array().cloned().unwrap_or_default();
    let asks = members.iter().map(|m| async move {
        let addr = m["addr"].as_str().unwrap_or_default().to_owned();
        let view = ask(caller, &format!("{}://{addr}", scheme_of(url)))
            .await
            .map_err(|e| super::runtime::error_chain(&e));
        Row {
            id: m["id"].as_u64().unwrap_or_default(),
            addr,
            role: m["role"].as_str().unwrap_or("?").to_owned(),
            view,
        }
    });
    let rows = futures_util::future::join_all(asks).await;
    if as_json {
        let members: Vec<Value> = rows
            .iter()
            .map(|r| match &r.view {
                Ok(view) => {
                    json!({"id": r.id, "addr": r.addr, "role": r.role, "reachable": true, "view": view})
                }
                Err(e) => json!({"id": r.id, "addr": r.addr, "role": r.role, "reachable": false, "error": e}),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "members": members }))?
        );
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

async fn ask(caller: &Caller, base: &str) -> anyhow::Result<Value> {
    let (status, body) = tokio::time::timeout(
        ASK_TIMEOUT,
        caller.request("GET", &format!("{base}/cluster"), None, ""),
    )
    .await
    .context("no answer within 2 s")??;
    if status != 200 {
        bail!("answered {status}: {}", body.trim());
    }
    serde_json::from_str(&body).context("the answer is not JSON")
}

/// The rows as an aligned text table. The lag comes from the leader's view of replication
/// (the most recent term's leader among the answers).
fn table(rows: &[Row]) -> String {
    let leader_view = rows
        .iter()
        .filter_map(|r| r.view.as_ref().ok())
        .filter(|v| v["state"] == "leader")
        .max_by_key(|v| v["term"].as_u64());
    let lag_of = |id: u64| -> String {
        let replication = leader_view.and_then(|v| v["replication"].as_array());
        match replication.and_then(|r| r.iter().find(|f| f["id"].as_u64() == Some(id))) {
            Some(follower) => follower["lag"].to_string(),
            None => "-".into(),
        }
    };
    let number = |v: &Value, field: &str| v[field].as_u64().map_or("-".into(), |n| n.to_string());
    let mut lines = vec![
        [
            "ID",
            "ADDRESS",
            "ROLE",
            "STATE",
            "TERM",
            "APPLIED",
            "COMMIT",
            "LAG",
            "REACHABLE",
        ]
        .map(String::from),
    ];
    for row in rows {
        lines.push(match &row.view {
            Ok(v) => [
                row.id.to_string(),
                row.addr.clone(),
                row.role.clone(),
                v["state"].as_str().unwrap_or("?").to_owned(),
                number(v, "term"),
                number(v, "applied_index"),
                number(v, "commit_index"),
                lag_of(row.id),
                "yes".into(),
            ],
            Err(e) => {
                let dash = || "-".to_owned();
                [
                    row.id.to_string(),
                    row.addr.clone(),
                    row.role.clone(),
                    dash(),
                    dash(),
                    dash(),
                    dash(),
                    dash(),
                    format!("no: {e}"),
                ]
            }
        });
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
