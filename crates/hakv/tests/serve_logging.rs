//! Log output of a real `hakv serve` process: `--log-format json` writes one JSON object per
//! line (for log shippers), text stays the default, and a bad format is a usage error.

mod support;

use support::ServerProcess;
use support::cli::run;

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
