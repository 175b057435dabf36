//! The seed's own Flask program and hakv answer the seed's client flow with the same bytes.
//! The seed app (`fixtures/seed_flask_app.py`, verbatim) runs in Flask's production mode,
//! whose `jsonify` output is the form hakv keeps (`docs/api.md`).

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Http, ServerProcess};

struct SeedApp(Child);

impl Drop for SeedApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_seed_app() -> (SeedApp, SocketAddr) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let script = format!(
        "import sys; sys.path.insert(0, {fixtures:?}); import seed_flask_app as s; \
         s.app.run(host='127.0.0.1', port={port}, debug=False)"
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with Flask is installed by .ci/run (pip install flask)");
    let app = SeedApp(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Http::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the seed app did not start (is Flask installed?)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (app, addr)
}

#[test]
fn hakv_answers_the_seed_client_exactly_like_the_seed_app() {
    let (_seed_app, seed_addr) = start_seed_app();
    let dir = tempfile::tempdir().unwrap();
    let node = ServerProcess::start(&dir.path().join("node"), &[]);
    // Werkzeug closes the connection after each answer, so each request gets a fresh one.
    let seed = || Http::connect(seed_addr).unwrap();
    let mut hakv = Http::connect(node.addr).unwrap();

    let writes = [
        ("/data/k1", r#"{"value": "hello world"}"#),
        (
            "/data/k2",
            r#"{"value": {"zeta": [1, 2.5, -0.0, 1e21, 1.5e-7], "alpha": "caf\u00e9 \ud83d\ude00", "t": true, "n": null}}"#,
        ),
        ("/data/k3", r#"{"value": 12345678901234567}"#),
        ("/data/k1", r#"{"value": ["overwritten", {"b": 1, "a": 2}]}"#),
        ("/data/k4", r#"{"value": "tab\t\"quote\" back\\slash \u007f"}"#),
    ];
    for (path, body) in writes {
        let from_seed = seed().send_json("POST", path, body, &[]).unwrap();
        let from_hakv = hakv.send_json("POST", path, body, &[]).unwrap();
        assert_eq!(from_hakv.status, from_seed.status, "POST {path}");
        assert_eq!(from_hakv.text(), from_seed.text(), "POST {path}");
    }
    for path in ["/data/k1", "/data/k2", "/data/k3", "/data/k4"] {
        let from_seed = seed().get(path).unwrap();
        let from_hakv = hakv.get(path).unwrap();
        assert_eq!(from_hakv.status, 200);
        assert_eq!(from_hakv.status, from_seed.status, "GET {path}");
        assert_eq!(from_hakv.text(), from_seed.text(), "GET {path}");
    }
    let from_seed = seed().get("/data/missing").unwrap();
    let from_hakv = hakv.get("/data/missing").unwrap();
    assert_eq!(from_hakv.status, from_seed.status);
    assert_eq!(from_hakv.json()["error"], from_seed.json()["error"]);
}
