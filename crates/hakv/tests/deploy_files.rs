//! The operator files in `deploy/` stay true to the code: the Prometheus alert rules parse and
//! pass their unit tests and every Grafana expression parses (`promtool`, Debian package
//! `prometheus`, installed by `.ci/run`); every metric they name is really exported by a live
//! cluster member or balancer; the systemd units pass `systemd-analyze verify`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Cluster, HakvProcess, Http};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo().join("deploy/prometheus"))
        .output()
        .expect("promtool is missing: install Debian's `prometheus` package (.ci/run does)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Every `hakv_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("hakv_") {
        let start = i + at;
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
                .count();
        names.insert(text[start..end].to_owned());
        i = end;
    }
    names
}

/// Every PromQL expression of the Grafana dashboards, with Grafana's variables filled in.
fn dashboard_expressions() -> Vec<String> {
    let mut exprs = Vec::new();
    for name in ["hakv-cluster.json", "hakv-balancer.json"] {
        let text = std::fs::read_to_string(repo().join("deploy/grafana").join(name)).unwrap();
        let board: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                exprs.push(expr.replace("$__rate_interval", "1m").replace("$instance", ".*"));
            }
        }
    }
    exprs
}

#[test]
fn promtool_checks_the_alert_rules_and_every_dashboard_expression() {
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts_test.yml"]);
    // promtool parses PromQL in rule files: the dashboards' expressions as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, expr) in dashboard_expressions().iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard_expr_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let file = dir.path().join("dashboards.yml");
    std::fs::write(&file, rules).unwrap();
    let out = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_alerts_and_dashboards_name_only_metrics_hakv_exports() {
    // A live cluster behind a live balancer, after some traffic, exports every family.
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    let leader = cluster.leader();
    let mut args = vec!["balance", "--listen", "127.0.0.1:0"];
    let addrs: Vec<String> = cluster.members.iter().map(|m| m.addr.to_string()).collect();
    for addr in &addrs {
        args.extend(["--backend", addr.as_str()]);
    }
    let balancer = HakvProcess::spawn(&args, &dir.path().join("balancer.log"));
    let mut front = Http::connect(balancer.addr).unwrap();
    let mut direct = Http::connect(cluster.member(leader).addr).unwrap();
    for http in [&mut front, &mut direct] {
        for i in 0..5 {
            let put = http
                .send_json("PUT", &format!("/data/k{i}"), r#"{"value": 1}"#, &[])
                .unwrap();
            assert!(put.status < 300, "{}", put.status);
            assert_eq!(http.get(&format!("/data/k{i}")).unwrap().status, 200);
        }
    }
    let mut exported = String::new();
    for addr in [cluster.member(leader).addr, balancer.admin()] {
        exported.push_str(&Http::connect(addr).unwrap().get("/metrics").unwrap().text());
    }
    let exported = metric_names(&exported);

    let mut named =
        metric_names(&std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap());
    for expr in dashboard_expressions() {
        named.extend(metric_names(&expr));
    }
    let missing: Vec<&String> = named.iter().filter(|name| !exported.contains(*name)).collect();
    assert!(missing.is_empty(), "metrics nobody exports: {missing:?}");
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    // `verify` checks that the executable exists: point the copies at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for name in ["hakv.service", "hakv-balance.service"] {
        let text = std::fs::read_to_string(repo().join("deploy/systemd").join(name)).unwrap();
        let copy = dir.path().join(name);
        std::fs::write(
            &copy,
            text.replace("/usr/local/bin/hakv", env!("CARGO_BIN_EXE_hakv")),
        )
        .unwrap();
        units.push(copy);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze is missing: install Debian's `systemd` package (.ci/run does)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}

/// `deploy/check.sh`: the Dockerfile lints clean (hadolint), the compose file validates
/// (compose-spec schema, Compose's own `config`), the Kubernetes manifests validate against
/// Kubernetes' schemas in strict mode, every YAML file passes yamllint, the files agree with
/// each other (peers, Services, Secret keys, probe ports, Prometheus targets), and every
/// `HAKV_*` variable they set is one this binary reads. The tools come from PyPI
/// (`deploy/check-requirements.txt`, installed by `.ci/run`).
#[test]
fn the_dockerfile_compose_file_and_kubernetes_manifests_validate() {
    let output = Command::new(repo().join("deploy/check.sh"))
        .env("HAKV_BIN", env!("CARGO_BIN_EXE_hakv"))
        .output()
        .expect("run deploy/check.sh");
    assert!(
        output.status.success(),
        "deploy/check.sh failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
