//! Log output of a real `hakv serve` process: `--log-format json` writes one JSON object per
//! line (for log shippers), text stays the default, and a bad format is a usage error; a
//! request's id (`X-Request-Id`) is echoed and names the request in its log line.

mod support;

use support::cli::run;
use support::{Cluster, Http, ServerProcess};

#[test]
fn the_request_id_is_echoed_and_names_a_failed_request_in_the_log() {
    // A one-member cluster: a read may wait there for a revision not applied yet (a single
    // node refuses one at once), which gives a 504 to look for in the log.
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(
        dir.path(),
        1,
        &["--log-format", "json", "--request-timeout", "300ms"],
    );
    let mut http = Http::connect(cluster.member(1).addr).unwrap();
    let own = http
        .request("GET", "/data/k", &[("X-Request-Id", "client-chosen-7")], None)
        .unwrap();
    assert_eq!(own.header("x-request-id"), Some("client-chosen-7"));
    let made = http.get("/health").unwrap();
    let made = made
        .header("x-request-id")
        .expect("an id is made when none is sent");
    assert!(made.len() > 8 && made.is_ascii(), "{made}");
    let odd = http
        .request("GET", "/health", &[("X-Request-Id", "has space")], None)
        .unwrap();
    assert_ne!(
        odd.header("x-request-id"),
        Some("has space"),
        "an odd id is replaced"
    );

    let failed = http
        .request(
            "GET",
            "/data/k",
            &[("X-Request-Id", "trace-me-42"), ("X-Hakv-Min-Revision", "1000")],
            None,
        )
        .unwrap();
    assert_eq!(failed.status, 504);
    assert_eq!(failed.header("x-request-id"), Some("trace-me-42"));
    let log_path = cluster.member(1).data_dir.with_extension("log");
    cluster.stop(1);
    let log = std::fs::read_to_string(log_path).unwrap();
    let line = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["fields"]["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no log line names the request:\n{log}"));
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["fields"]["status"], 504, "{line}");
    assert_eq!(line["fields"]["route"], "/data/{key}", "{line}");
}

#[test]
fn json_logs_are_one_object_per_line_with_level_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, &["--log-format", "json"]);
    assert_eq!(server.terminate().code(), Some(0));
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // At least the start and the shutdown.
    assert!(lines.len() >= 2, "{log}");
    let mut messages = Vec::new();
    for line in lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&event["level"].as_str().unwrap_or("")),
            "{line}"
        );
        messages.push(event["fields"]["message"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        messages.iter().any(|m| m.contains("hakv serve starting")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("shutdown complete")),
        "{messages:?}"
    );
}

#[test]
fn text_logs_are_the_default_and_a_bad_format_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, &[]);
    assert_eq!(server.terminate().code(), Some(0));
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(
        log.contains("INFO") && !log.trim_start().starts_with('{'),
        "{log}"
    );

    let out = run(&["serve", "--log-format", "yaml"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("possible values: text, json"),
        "{}",
        out.stderr
    );
}
