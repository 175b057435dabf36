//! The web consoles in a real headless Chromium (Debian's `chromium`, driven by Playwright:
//! `tests/ui/console_check.py`): a member's `/ui` and the balancer's, served from the binary,
//! load with no console error or failed request; a key is put, read back and deleted through
//! the page; a backend is drained and undrained through the balancer's page. Screenshots are
//! kept under `target/console-screenshots/`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Cluster, HakvProcess, Http, ServerProcess};

/// Runs the browser check against `url`; fails the test with the check's own message.
fn check_in_chromium(url: &str, extra: &[&str], shots: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/console_check.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(url)
        .args(extra)
        .arg("--screenshots")
        .arg(shots)
        .output()
        .expect("run python3 (the console check needs Chromium and Playwright: see .ci/run)");
    assert!(
        output.status.success(),
        "console check of {url} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn screenshots(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screenshots")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_members_console_and_the_balancers_work_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &[]);
    let leader = cluster.member(cluster.leader()).addr;

    // The files themselves: types, and a name that is not one of them.
    let mut http = Http::connect(leader).unwrap();
    let page = http.get("/ui").unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.text().contains("/ui/console.js"));
    let script = http.get("/ui/console.js").unwrap();
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let missing = http.get("/ui/nothing.js").unwrap();
    assert_eq!(
        (missing.status, missing.code()),
        (404, "route_not_found".to_string())
    );

    check_in_chromium(&format!("http://{leader}/ui"), &[], &screenshots("member"));

    let mut args = vec!["balance", "--listen", "127.0.0.1:0", "--leader-aware"];
    let backends: Vec<String> = cluster.members.iter().map(|m| m.addr.to_string()).collect();
    for backend in &backends {
        args.extend(["--backend", backend.as_str()]);
    }
    let balancer = HakvProcess::spawn(&args, &dir.path().join("balancer.log"));
    let css = Http::connect(balancer.admin())
        .unwrap()
        .get("/ui/console.css")
        .unwrap();
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    check_in_chromium(
        &format!("http://{}/ui", balancer.admin()),
        &["--balancer"],
        &screenshots("balancer"),
    );
}

#[test]
fn the_console_works_with_authentication_on() {
    let dir = tempfile::tempdir().unwrap();
    let token = "console-admin-token-0123456789";
    let node = ServerProcess::start(&dir.path().join("node"), &["--admin-token", token]);
    // The page itself needs no token (it is typed into the page); the API does.
    assert_eq!(Http::connect(node.addr).unwrap().get("/ui").unwrap().status, 200);
    assert_eq!(
        Http::connect(node.addr).unwrap().get("/data/x").unwrap().status,
        401
    );
    check_in_chromium(&node.url("/ui"), &["--token", token], &screenshots("auth"));
}
