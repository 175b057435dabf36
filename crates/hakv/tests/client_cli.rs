//! `hakv get|put|delete|scan|status` against a real `hakv serve`: outputs and exit codes.

mod support;

use serde_json::json;
use support::cli::{Node, closed_port, run, run_with_env};

#[test]
fn put_then_get_round_trips_any_key_and_json_value() {
    let node = Node::start();
    let key = "users/ada lovelace/ключ";
    let put = node.hakv(&["put", key, r#"{"born":1815,"tags":["math"]}"#, "--json"]);
    assert_eq!(put.code, 0, "{}", put.stderr);
    let put = put.json();
    assert_eq!(put["created"], true);
    let revision = put["revision"].as_u64().expect("a revision");

    let get = node.hakv(&["get", key]);
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(get.stdout.trim(), r#"{"born":1815,"tags":["math"]}"#);
    assert_eq!(get.stderr.trim(), format!("revision {revision}"));

    let get = node.hakv(&["get", key, "--json"]).json();
    assert_eq!(
        get,
        json!({"key": key, "data": {"born": 1815, "tags": ["math"]}, "revision": revision})
    );

    let shown = node.hakv(&["get", key, "--show-revision"]);
    assert_eq!(shown.stdout.lines().nth(1), Some(revision.to_string().as_str()));

    let replaced = node.hakv(&["put", key, "2", "--json"]).json();
    assert_eq!(replaced["created"], false);
    assert!(replaced["revision"].as_u64().unwrap() > revision);
}

#[test]
fn values_are_json_if_they_parse_else_strings() {
    let node = Node::start();
    for (value, extra, stored) in [
        ("42", None, json!(42)),
        ("true", None, json!(true)),
        ("hello world", None, json!("hello world")),
        ("\"42\"", None, json!("42")),
        ("42", Some("--raw-string"), json!("42")),
    ] {
        let mut args = vec!["put", "v", value];
        args.extend(extra);
        assert_eq!(node.hakv(&args).code, 0);
        assert_eq!(
            node.hakv(&["get", "v", "--json"]).json()["data"],
            stored,
            "{value} {extra:?}"
        );
    }
    // The seed's POST works too.
    assert_eq!(node.hakv(&["put", "p", "1", "--post"]).code, 0);
    assert_eq!(node.hakv(&["get", "p"]).stdout.trim(), "1");
}

#[test]
fn missing_keys_exit_1() {
    let node = Node::start();
    let get = node.hakv(&["get", "nothing-here"]);
    assert_eq!(get.code, 1);
    assert!(get.stdout.is_empty());
    assert!(get.stderr.contains("not found"));
    assert_eq!(
        node.hakv(&["get", "nothing-here", "--json"]).json()["code"],
        "key_not_found"
    );
    assert_eq!(node.hakv(&["delete", "nothing-here"]).code, 1);
}

#[test]
fn failed_conditions_exit_3_with_the_current_revision() {
    let node = Node::start();
    let rev = node.hakv(&["put", "cas", "1", "--json"]).json()["revision"]
        .as_u64()
        .unwrap();
    let stale = (rev + 100).to_string();

    let conflict = node.hakv(&["put", "cas", "2", "--if-match", &stale, "--json"]);
    assert_eq!(conflict.code, 3);
    assert_eq!(conflict.json()["current_revision"], rev);
    assert_eq!(node.hakv(&["put", "cas", "2", "--if-absent"]).code, 3);
    assert_eq!(node.hakv(&["get", "cas"]).stdout.trim(), "1", "nothing changed");

    let ok = node.hakv(&["put", "cas", "2", "--if-match", &rev.to_string(), "--json"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let rev2 = ok.json()["revision"].as_u64().unwrap();
    assert_eq!(node.hakv(&["put", "new", "1", "--if-absent"]).code, 0);

    assert_eq!(
        node.hakv(&["delete", "cas", "--if-match", &rev.to_string()]).code,
        3
    );
    assert_eq!(
        node.hakv(&["delete", "cas", "--if-match", &rev2.to_string()])
            .code,
        0
    );
    assert_eq!(node.hakv(&["get", "cas"]).code, 1);
}

#[test]
fn scan_follows_cursors_and_stops_at_the_limit() {
    let node = Node::start();
    let mut expected: Vec<String> = (0..25).map(|i| format!("scan/{i:02}")).collect();
    for key in &expected {
        assert_eq!(node.hakv(&["put", key, key, "--raw-string"]).code, 0);
    }
    node.hakv(&["put", "other", "1"]);
    expected.sort();

    let all = node.hakv(&["scan", "--prefix", "scan/", "--page-size", "7"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let lines: Vec<&str> = all.stdout.lines().collect();
    let expected_lines: Vec<String> = expected.iter().map(|k| format!("{k}\t\"{k}\"")).collect();
    assert_eq!(lines, expected_lines, "each key once, in order, across 4 pages");

    let limited = node.hakv(&[
        "scan",
        "--prefix",
        "scan/",
        "--page-size",
        "7",
        "--limit",
        "10",
        "--json",
    ]);
    let items: Vec<serde_json::Value> = limited
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(items.len(), 10);
    assert_eq!(items[9]["key"], expected[9]);
    assert!(items.iter().all(|i| i["revision"].as_u64().is_some()));
}

#[test]
fn status_shows_health_and_readiness() {
    let node = Node::start();
    let status = node.hakv(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("/health") && status.stdout.contains("/ready"));
    let json = node.hakv(&["status", "--json"]).json();
    assert_eq!(json["health"]["status"], 200);
    assert_eq!(json["ready"]["status"], 200);
}

#[test]
fn expired_keys_are_gone() {
    let node = Node::start();
    assert_eq!(node.hakv(&["put", "short", "1", "--ttl", "1"]).code, 0);
    // The contract: an expired key is never returned, so 1.5 s after a 1 s TTL it is gone.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(node.hakv(&["get", "short"]).code, 1);
}

#[test]
fn usage_and_connection_errors_have_their_own_codes() {
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let down = run(&["get", "k", "--url", &unreachable, "--json"]);
    assert_eq!(down.code, 5);
    assert_eq!(down.json()["code"], "connect");
    assert_eq!(run(&["get", "k", "--url", "not a url"]).code, 2);
    assert_eq!(run(&["get"]).code, 2);
    assert_eq!(run(&["put", "k", "v", "--if-match", "1", "--if-absent"]).code, 2);
}

#[test]
fn a_reader_that_goes_away_ends_the_client_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let node = Node::start();
    for i in 0..50 {
        assert_eq!(node.hakv(&["put", &format!("k{i}"), "1"]).code, 0);
    }
    // `hakv scan | head -0`: the pipe's reader is gone before the first line is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hakv"))
        .args(["scan", "--url", &node.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.code() == Some(0) || out.status.signal() == Some(13),
        "{:?}: {stderr}",
        out.status
    );
}

#[test]
fn usage_errors_and_missing_keys_follow_the_documented_exit_codes() {
    let node = Node::start();
    let empty = node.hakv(&["get", ""]);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    let missing = node.hakv(&["get", "nothing-here", "--json"]);
    assert_eq!(missing.code, 1);
    let body = missing.json();
    assert_eq!(
        (body["code"].as_str(), body["retryable"].as_bool()),
        (Some("key_not_found"), Some(false))
    );
    // Boolean variables take 1/0, yes/no, on/off as well as true/false, everywhere.
    let url = node.url.as_str();
    for (value, json) in [("1", true), ("yes", true), ("0", false), ("off", false)] {
        let out = run_with_env(&["get", "nothing-here", "--url", url], &[("HAKV_JSON", value)]);
        assert_eq!(out.code, 1, "HAKV_JSON={value}: {}", out.stderr);
        assert_eq!(
            out.stdout.trim_start().starts_with('{'),
            json,
            "HAKV_JSON={value}: {}",
            out.stdout
        );
    }
}
