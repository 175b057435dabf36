//! Every row of DESIGN.md's API tables against a real `hakv serve` on loopback.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Http, ServerProcess, eventually};

fn node() -> (tempfile::TempDir, ServerProcess, Http) {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &[]);
    let http = Http::connect(server.addr).unwrap();
    (dir, server, http)
}

#[test]
fn the_seed_client_flow_is_byte_for_byte() {
    let (_dir, _server, mut http) = node();
    let set = http
        .send_json("POST", "/data/k1", r#"{"value": "hello world"}"#, &[])
        .unwrap();
    assert_eq!(set.status, 201);
    assert_eq!(set.body, b"{\"message\":\"Data set successfully\"}\n");
    assert_eq!(set.header("content-type"), Some("application/json"));

    let get = http.get("/data/k1").unwrap();
    assert_eq!(get.status, 200);
    assert_eq!(get.body, b"{\"data\":\"hello world\"}\n");

    // The seed overwrites with POST and still answers 201.
    let again = http
        .send_json("POST", "/data/k1", r#"{"value": {"n": [1, 2.5, null]}}"#, &[])
        .unwrap();
    assert_eq!(again.status, 201);
    assert_eq!(
        http.get("/data/k1").unwrap().body,
        b"{\"data\":{\"n\":[1,2.5,null]}}\n"
    );

    let missing = http.get("/data/nokey").unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "Key not found");
    assert_eq!(missing.code(), "key_not_found");
}

#[test]
fn put_delete_and_revisions_as_etags() {
    let (_dir, _server, mut http) = node();
    let created = http.send_json("PUT", "/data/a", r#"{"value": 1}"#, &[]).unwrap();
    assert_eq!(created.status, 201);
    let replaced = http.send_json("PUT", "/data/a", r#"{"value": 2}"#, &[]).unwrap();
    assert_eq!(replaced.status, 200);
    assert!(replaced.revision() > created.revision());
    let read = http.get("/data/a").unwrap();
    assert_eq!(read.revision(), replaced.revision());

    // Keys may hold `/` and any UTF-8, percent-encoded in the path.
    let odd = "/data/dir/sub%20dir/caf%C3%A9%3F%23";
    assert_eq!(
        http.send_json("PUT", odd, r#"{"value": "x"}"#, &[])
            .unwrap()
            .status,
        201
    );
    assert_eq!(http.get(odd).unwrap().json(), json!({"data": "x"}));
    let page = http.get("/data?prefix=dir%2F").unwrap().json();
    assert_eq!(page["items"][0]["key"], "dir/sub dir/café?#");

    let deleted = http.request("DELETE", "/data/a", &[], None).unwrap();
    assert_eq!(deleted.status, 200);
    assert!(deleted.revision() > replaced.revision());
    assert_eq!(http.get("/data/a").unwrap().status, 404);
    let gone = http.request("DELETE", "/data/a", &[], None).unwrap();
    assert_eq!((gone.status, gone.code().as_str()), (404, "key_not_found"));

    let head = http
        .request("HEAD", "/data/dir/sub%20dir/caf%C3%A9%3F%23", &[], None)
        .unwrap();
    assert_eq!(head.status, 200);
}

#[test]
fn preconditions_decide_compare_and_set() {
    let (_dir, _server, mut http) = node();
    let create_only = [("If-None-Match", "*")];
    let first = http
        .send_json("PUT", "/data/c", r#"{"value": 1}"#, &create_only)
        .unwrap();
    assert_eq!(first.status, 201);
    let second = http
        .send_json("PUT", "/data/c", r#"{"value": 2}"#, &create_only)
        .unwrap();
    assert_eq!(second.status, 412);
    assert_eq!(second.code(), "precondition_failed");
    assert_eq!(second.json()["current_revision"], first.revision());
    assert_eq!(
        second.revision(),
        first.revision(),
        "412 carries the current ETag"
    );

    let rev = format!("\"{}\"", first.revision());
    let cas = http
        .send_json("PUT", "/data/c", r#"{"value": 3}"#, &[("If-Match", &rev)])
        .unwrap();
    assert_eq!(cas.status, 200);
    let stale = http
        .send_json("PUT", "/data/c", r#"{"value": 4}"#, &[("If-Match", &rev)])
        .unwrap();
    assert_eq!(stale.status, 412);
    assert_eq!(stale.json()["current_revision"], cas.revision());
    assert_eq!(http.get("/data/c").unwrap().json()["data"], 3);

    let absent = http
        .send_json("PUT", "/data/none", r#"{"value": 1}"#, &[("If-Match", "\"1\"")])
        .unwrap();
    assert_eq!(absent.status, 412);
    assert_eq!(absent.json()["current_revision"], serde_json::Value::Null);
    assert_eq!(
        http.get("/data/none").unwrap().status,
        404,
        "a failed condition writes nothing"
    );

    let del_stale = http
        .request("DELETE", "/data/c", &[("If-Match", &rev)], None)
        .unwrap();
    assert_eq!(del_stale.status, 412);
    let current = format!("\"{}\"", cas.revision());
    assert_eq!(
        http.request("DELETE", "/data/c", &[("If-Match", &current)], None)
            .unwrap()
            .status,
        200
    );
}

#[test]
fn expired_keys_are_never_returned_and_are_purged() {
    let (_dir, _server, mut http) = node();
    let set = http
        .send_json("PUT", "/data/t", r#"{"value": "brief", "ttl_seconds": 1}"#, &[])
        .unwrap();
    assert_eq!(set.status, 201);
    http.send_json("PUT", "/data/keep", r#"{"value": "stays"}"#, &[])
        .unwrap();
    assert_eq!(http.get("/data/t").unwrap().status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = http.get("/data/t").unwrap();
        if reply.status == 404 {
            break;
        }
        assert_eq!(reply.json()["data"], "brief");
        assert!(Instant::now() < deadline, "the key did not expire");
        std::thread::sleep(Duration::from_millis(50));
    }
    let scan = http.get("/data").unwrap().json();
    assert_eq!(
        scan["items"].as_array().unwrap().len(),
        1,
        "scans skip expired keys: {scan}"
    );
    // The background purge removes it through the log: the revision moves past the TTL write.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http.get("/metrics").unwrap().text();
        if metrics
            .lines()
            .any(|l| l.starts_with("hakv_storage_expired_keys_total") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired key was not purged:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Recreating an expired key is a create, as if it never existed.
    let again = http
        .send_json("PUT", "/data/t", r#"{"value": 2}"#, &[("If-None-Match", "*")])
        .unwrap();
    assert_eq!(again.status, 201);
}

#[test]
fn scans_page_through_thousands_of_keys_exactly_once() {
    let (_dir, server, mut http) = node();
    const KEYS: usize = 3000;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let addr = server.addr;
            scope.spawn(move || {
                let mut http = Http::connect(addr).unwrap();
                for i in (t..KEYS).step_by(4) {
                    let reply = http
                        .send_json(
                            "PUT",
                            &format!("/data/s/{i:05}"),
                            &format!("{{\"value\": {i}}}"),
                            &[],
                        )
                        .unwrap();
                    assert_eq!(reply.status, 201);
                }
            });
        }
    });
    http.send_json("PUT", "/data/t/outside", r#"{"value": 0}"#, &[])
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/data?prefix=s%2F&limit=250&cursor={c}"),
            None => "/data?prefix=s%2F&limit=250".to_string(),
        };
        let page = http.get(&path).unwrap().json();
        // Writes during the walk (before and after the cursor) must not disturb it.
        http.send_json(
            "PUT",
            &format!("/data/s/00000-new{pages}"),
            r#"{"value": -1}"#,
            &[],
        )
        .unwrap();
        for item in page["items"].as_array().unwrap() {
            let key = item["key"].as_str().unwrap().to_string();
            if !key.contains("new") {
                assert_eq!(item["data"], key[2..].parse::<u64>().unwrap());
                seen.push(key);
            }
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 100, "pagination does not end");
    }
    let expected: Vec<String> = (0..KEYS).map(|i| format!("s/{i:05}")).collect();
    assert_eq!(seen, expected, "each key exactly once, in order");
}

#[test]
fn operational_endpoints_answer() {
    let (_dir, _server, mut http) = node();
    assert_eq!(http.get("/health").unwrap().status, 200);
    assert_eq!(http.get("/ready").unwrap().status, 200);
    http.send_json("POST", "/data/m", r#"{"value": 1}"#, &[]).unwrap();
    http.get("/data/m").unwrap();
    let metrics = http.get("/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for name in [
        "hakv_http_requests_total{route=\"/data/{key}\",method=\"POST\",status=\"201\"} 1",
        "hakv_http_request_duration_seconds_bucket",
        "hakv_cache_hits_total",
        "hakv_cache_misses_total",
        "hakv_cache_evictions_total",
        "hakv_cache_bytes",
        "hakv_storage_commit_duration_seconds_bucket",
        "hakv_storage_keys",
        "hakv_storage_disk_bytes",
        "hakv_http_requests_in_flight",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    // Families in name order, the same on every scrape.
    let families = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect()
    };
    let order = families(&text);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(families(&http.get("/metrics").unwrap().text()), order);
    // The runtime's wake-up probe records every 10 ms from the start.
    eventually(
        "hakv_runtime_wake_delay_seconds in /metrics",
        Duration::from_secs(5),
        || {
            let text = http.get("/metrics").unwrap().text();
            text.contains("hakv_runtime_wake_delay_seconds_bucket")
        },
    );
    // What the data directory occupies, as du counts it: a few KiB here, not the journal's
    // preallocated 64 MiB.
    let disk: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("hakv_storage_disk_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        disk > 0.0 && disk < 16.0 * 1024.0 * 1024.0,
        "hakv_storage_disk_bytes {disk}"
    );
    // The exposition must satisfy Prometheus' own linter (Debian package `prometheus`).
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed by .ci/run (apt-get install prometheus)");
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(&metrics.body).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn revisions_and_data_survive_a_clean_restart() {
    let (_dir, mut server, mut http) = node();
    let mut last = 0;
    for i in 0..20 {
        last = http
            .send_json("PUT", &format!("/data/r{i}"), &format!("{{\"value\": {i}}}"), &[])
            .unwrap()
            .revision();
    }
    assert_eq!(server.terminate().code(), Some(0), "SIGTERM is a clean exit");
    server.restart();
    let mut http = Http::connect(server.addr).unwrap();
    assert_eq!(http.get("/data/r7").unwrap().json()["data"], 7);
    let next = http
        .send_json("PUT", "/data/after", r#"{"value": 0}"#, &[])
        .unwrap();
    assert!(
        next.revision() > last,
        "revision {} after restart must exceed {last}",
        next.revision()
    );
}

#[test]
fn reads_can_wait_for_a_minimum_revision() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &["--request-timeout", "300ms"]);
    let mut http = Http::connect(server.addr).unwrap();
    let written = http
        .send_json("PUT", "/data/ryw", r#"{"value": 1}"#, &[])
        .unwrap()
        .revision();
    let seen = http
        .request(
            "GET",
            "/data/ryw",
            &[("X-Hakv-Min-Revision", &written.to_string())],
            None,
        )
        .unwrap();
    assert_eq!((seen.status, seen.revision()), (200, written));
    // A single node applies a write before answering it: a later revision was never handed
    // out, so it is refused at once (a cluster member waits for it: serve_logging.rs).
    let future = (written + 1).to_string();
    let refused = http
        .request("GET", "/data/ryw", &[("X-Hakv-Min-Revision", &future)], None)
        .unwrap();
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (400, "invalid_precondition"),
        "a revision beyond the node's"
    );
    let bad = http
        .request("GET", "/data/ryw", &[("X-Hakv-Min-Revision", "soon")], None)
        .unwrap();
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_precondition"));
    // A revision no write could have had is refused at once, not waited for.
    let server = ServerProcess::start(&dir.path().join("patient"), &["--request-timeout", "30s"]);
    let mut http = Http::connect(server.addr).unwrap();
    let started = std::time::Instant::now();
    let never = http
        .request(
            "GET",
            "/data/ryw",
            &[("X-Hakv-Min-Revision", "18446744073709551615")],
            None,
        )
        .unwrap();
    assert_eq!(
        (never.status, never.code().as_str()),
        (400, "invalid_precondition")
    );
    assert!(started.elapsed() < Duration::from_secs(20), "it waited instead");
}

#[test]
fn a_scan_page_ends_at_about_4_mib_and_the_cursor_walks_the_rest() {
    let (_dir, _server, mut http) = node();
    let value = format!("{{\"value\": \"{}\"}}", "x".repeat(1_000_000));
    for i in 0..12 {
        let put = http
            .send_json("PUT", &format!("/data/big/{i:02}"), &value, &[])
            .unwrap();
        assert_eq!(put.status, 201);
    }
    let mut path = "/data?prefix=big/&limit=1000".to_string();
    let mut seen = Vec::new();
    loop {
        let page = http.get(&path).unwrap();
        assert_eq!(page.status, 200);
        assert!(page.body.len() < 6 << 20, "a page of {} bytes", page.body.len());
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5, "{} items of 1 MB in one page", items.len());
        seen.extend(items.iter().map(|item| item["key"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/data?prefix=big/&limit=1000&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..12).map(|i| format!("big/{i:02}")).collect();
    assert_eq!(seen, expected, "every key once, in order");
}

#[test]
fn conditional_reads_weak_tags_and_misspelled_fields_follow_http() {
    let (_dir, _server, mut http) = node();
    let put = http.send_json("PUT", "/data/c", r#"{"value": 1}"#, &[]).unwrap();
    let etag = put.header("etag").unwrap().to_owned();
    // A read whose copy is current: 304, the ETag, no body.
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        "*".to_owned(),
        format!("\"999\", {etag}"),
    ] {
        let reply = http
            .request("GET", "/data/c", &[("If-None-Match", &tag)], None)
            .unwrap();
        assert_eq!(reply.status, 304, "{tag}");
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
        assert!(reply.body.is_empty());
    }
    let stale = http
        .request("GET", "/data/c", &[("If-None-Match", "\"999\"")], None)
        .unwrap();
    assert_eq!(stale.status, 200);
    // If-Match compares strongly: a weak tag never matches, even the current revision's.
    let weak = http
        .send_json(
            "PUT",
            "/data/c",
            r#"{"value": 2}"#,
            &[("If-Match", &format!("W/{etag}"))],
        )
        .unwrap();
    assert_eq!((weak.status, weak.code().as_str()), (412, "precondition_failed"));
    // A misspelled field is named, not ignored.
    let typo = http
        .send_json("PUT", "/data/c", r#"{"value": 2, "ttl": 10}"#, &[])
        .unwrap();
    assert_eq!((typo.status, typo.code().as_str()), (400, "invalid_json"));
    assert!(typo.text().contains("ttl"), "{}", typo.text());
    assert_eq!(
        http.get("/data/c").unwrap().json()["data"],
        1,
        "nothing was written"
    );
    let limit = http.get("/data?limit=abc").unwrap();
    assert_eq!(limit.status, 400);
    assert!(limit.text().contains("limit"), "{}", limit.text());
}
