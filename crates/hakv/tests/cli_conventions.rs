//! One CLI convention across subcommands, with real processes: addresses may be host names
//! (`--listen localhost:0`, `--peers 1=localhost:…`), and a bad setting is a usage error (2).

mod support;

use support::cli::run;
use support::{HakvProcess, Http};

#[test]
fn serve_listens_on_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = HakvProcess::spawn(
        &[
            "serve",
            "--listen",
            "localhost:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &dir.path().join("serve.log"),
    );
    assert!(node.addr.ip().is_loopback(), "{}", node.addr);
    assert_eq!(
        Http::connect(node.addr).unwrap().get("/health").unwrap().status,
        200
    );
}

#[test]
fn an_address_that_is_not_one_is_a_usage_error_that_says_why() {
    let out = run(&["serve", "--listen", "localhost"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("the port is missing"), "{}", out.stderr);
    // A peer's host name is looked up at each connection, not at start; its form is checked.
    let out = run(&["serve", "--node-id", "1", "--peers", "1=no where:7401"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no where"), "{}", out.stderr);
}

#[test]
fn a_data_directory_in_use_is_named_once_and_nothing_claims_to_listen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _first = support::ServerProcess::start(&data, &[]);
    let second = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(!second.stdout.contains("listening on"), "{}", second.stdout);
    let error = second
        .stderr
        .lines()
        .find(|l| l.starts_with("hakv serve:"))
        .expect("an error line");
    assert!(
        error.contains("another process holds this data directory"),
        "{error}"
    );
    assert_eq!(error.matches("another process").count(), 1, "{error}");
}
