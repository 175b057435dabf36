//! `crates/server/openapi.json` stays true to the code: a node serves it at `/openapi.json`;
//! every operation it documents is routed (no `route_not_found`, no 405) and every other
//! method on a documented path is a JSON 405 naming the documented ones; and schemathesis
//! (PyPI, `crates/server/schemathesis/`) checks every answer of a live single node, a node
//! with authentication on and a cluster's follower and leader against it, with no 5xx from
//! anything a client sent. `crates/balancer/openapi.json`, the balancer's admin API, is checked
//! the same way against a live `hakv balance` (`crates/balancer/schemathesis/`).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::{Http, ServerProcess};

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

fn spec() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The error code of a JSON error answer; empty for any other body (a backup, metrics, a page).
fn code_of(reply: &support::Reply) -> String {
    serde_json::from_slice::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|body| body["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A concrete path for a documented template.
fn concrete(template: &str) -> String {
    template
        .replace("{key}", "openapi-probe")
        .replace("{id}", "1")
        .replace("{file}", "console.js")
}

#[test]
fn every_documented_operation_is_routed_and_every_other_method_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = ServerProcess::start(&dir.path().join("node"), &[]);
    let mut http = Http::connect(node.addr).unwrap();
    let served = http.get("/openapi.json").unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(
        served.json(),
        spec(),
        "/openapi.json is the file in the repository"
    );

    let spec = spec();
    for (template, operations) in spec["paths"].as_object().unwrap() {
        let documented: BTreeSet<String> = operations
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.as_str() != "parameters")
            .map(|m| m.to_uppercase())
            .collect();
        let path = concrete(template);
        for method in METHODS {
            let mut http = Http::connect(node.addr).unwrap();
            let reply = http.request(method, &path, &[], Some(b"{}")).unwrap();
            // An answer to HEAD has no body to name its error code.
            let has_body = method != "HEAD";
            if documented.contains(method) {
                if has_body {
                    let code = code_of(&reply);
                    assert_ne!(code, "route_not_found", "{method} {template} is documented");
                }
                assert_ne!(reply.status, 405, "{method} {template} is documented");
            } else {
                assert_eq!(reply.status, 405, "{method} {template} is not documented");
                if has_body {
                    assert_eq!(code_of(&reply), "method_not_allowed", "{method} {template}");
                }
                let allowed: BTreeSet<String> = reply
                    .header("allow")
                    .unwrap_or_else(|| panic!("{method} {template}: no Allow"))
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .collect();
                assert_eq!(allowed, documented, "Allow of {template}");
            }
        }
    }
}

#[test]
fn schemathesis_finds_every_answer_of_live_nodes_true_to_the_spec() {
    schemathesis(
        "crates/server/schemathesis/run.sh",
        &[
            "single",
            "auth-admin",
            "auth-limited",
            "cluster-follower",
            "cluster-follower-token",
            "cluster-leader",
        ],
    );
}

#[test]
fn schemathesis_finds_every_answer_of_a_live_balancers_admin_api_true_to_its_spec() {
    schemathesis("crates/balancer/schemathesis/run.sh", &["lb-notoken", "lb-token"]);
}

/// Runs one of the repository's schemathesis scripts against live processes of this build and
/// fails with the end of each run's report (`runs`: the names the script gives them).
fn schemathesis(script: &str, runs: &[&str]) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg(script)
        .current_dir(&repo)
        .env("HAKV", env!("CARGO_BIN_EXE_hakv"))
        .env("OUT", out.path())
        // Enough cases to cover every operation and status a few times within a minute or two.
        .env("EXAMPLES", "30")
        .output()
        .unwrap_or_else(|e| panic!("run {script} (pip install its requirements.txt): {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        for name in runs {
            if let Ok(text) = std::fs::read_to_string(out.path().join(format!("{name}.txt"))) {
                let lines: Vec<&str> = text.lines().collect();
                eprintln!(
                    "--- {name}\n{}",
                    lines[lines.len().saturating_sub(60)..].join("\n")
                );
            }
        }
        panic!("schemathesis found answers that break the spec ({script}):\n{report}");
    }
}
