//! `hakv bench` against a real `hakv serve`: bounded runs, report fields, prefill, interrupt.
//! Asserts counts and formulas, never timings.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::cli::{Node, closed_port, run};

#[test]
fn closed_loop_report_adds_up() {
    let node = Node::start();
    let bench = node_bench(
        &node,
        &[
            "--requests",
            "2000",
            "-c",
            "8",
            "--prefill",
            "--keys",
            "100",
            "--write-ratio",
            "0.2",
            "--value-size",
            "24",
            "--json",
            "-q",
        ],
    );
    assert_eq!(bench.code, 0, "{}", bench.stderr);
    let r = bench.json();
    assert_eq!(r["requests"], 2000);
    assert_eq!(r["successful"], 2000);
    assert_eq!(r["failed"], 0);
    assert_eq!(r["reads_not_found"], 0, "prefill wrote every key");
    assert_eq!(r["errors"], serde_json::json!({}));
    assert_eq!(r["stopped_by"], "requests");
    assert_eq!(r["availability"]["by_requests"], 1.0);
    assert_eq!(r["reads"].as_u64().unwrap() + r["writes"].as_u64().unwrap(), 2000);
    let qps = r["qps"].as_f64().unwrap();
    let n_over_t = 2000.0 / r["elapsed_seconds"].as_f64().unwrap();
    assert!((qps - n_over_t).abs() < 1e-6 * n_over_t);
    let l = &r["latency_us"];
    let p = |k: &str| l[k].as_u64().unwrap();
    assert!(p("min") <= p("p50") && p("p50") <= p("p90") && p("p90") <= p("p99"));
    assert!(p("p99") <= p("p999") && p("p999") <= p("max"));
    assert_eq!(r["prefill"]["requests"], 100);
    assert_eq!(r["prefill"]["completed"], true);

    // The prefill really wrote keys bench-0..bench-99 with seed-shaped 24-byte strings.
    let scan = node.hakv(&["scan", "--prefix", "bench-", "--json"]);
    let items: Vec<serde_json::Value> = scan
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 100);
    assert!(items.iter().all(|i| i["data"].as_str().unwrap().len() == 24));
}

#[test]
fn open_loop_with_put_and_text_report() {
    let node = Node::start();
    let bench = node_bench(
        &node,
        &[
            "--rate",
            "2000",
            "--requests",
            "400",
            "-c",
            "4",
            "--write-method",
            "put",
            "--write-ratio",
            "1",
            "--keys",
            "10",
            "-q",
        ],
    );
    assert_eq!(bench.code, 0, "{}", bench.stderr);
    let text = &bench.stdout;
    assert!(text.contains("open-loop"), "{text}");
    assert!(text.contains("QPS = N / T   = 400 / "), "{text}");
    assert!(
        text.contains("availability  = successful / total = 400 / 400 = 100.0000%"),
        "{text}"
    );
    assert!(text.contains("availability  = uptime / total time"), "{text}");
    assert!(text.contains("errors        none"), "{text}");
    // PUT answers 201 then 200: every write succeeded.
    assert_eq!(
        node.hakv(&["scan", "--prefix", "bench-"]).stdout.lines().count(),
        10
    );
}

#[test]
fn a_down_target_is_reported_not_fatal() {
    let target = format!("http://127.0.0.1:{}", closed_port());
    // --threads 2 also exercises the subcommand's multi-threaded runtime.
    let bench = run(&[
        "bench",
        "--target",
        &target,
        "--requests",
        "50",
        "-c",
        "2",
        "--threads",
        "2",
        "--json",
        "-q",
    ]);
    assert_eq!(bench.code, 0, "{}", bench.stderr);
    let r = bench.json();
    assert_eq!(r["errors"]["connect"], 50);
    assert_eq!(r["errors_by_class"]["transport"], 50);
    assert_eq!(r["availability"]["by_requests"], 0.0);
}

#[test]
fn bad_settings_exit_2() {
    assert_eq!(run(&["bench", "--write-ratio", "2"]).code, 2);
    assert_eq!(run(&["bench", "--key-dist", "normal"]).code, 2);
    assert_eq!(run(&["bench", "--target", "ftp://x"]).code, 2);
}

#[test]
fn interrupt_still_prints_the_report() {
    let node = Node::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hakv"))
        .args([
            "bench",
            "--target",
            &node.url,
            "--duration",
            "60s",
            "-c",
            "2",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hakv bench");
    // The first progress line proves the load is running; then Ctrl-C it.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = stderr.next().expect("a progress line").unwrap();
    assert!(first.contains("req/s"), "{first}");
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = child.wait_with_output().expect("bench exits");
    assert_eq!(output.status.code(), Some(0));
    let r: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(r["stopped_by"], "interrupted");
    assert!(r["requests"].as_u64().unwrap() > 0);
    assert!(r["elapsed_seconds"].as_f64().unwrap() < 60.0);
}

fn node_bench(node: &Node, args: &[&str]) -> support::cli::Run {
    run(&[&["bench", "--target", node.url.as_str()], args].concat())
}
