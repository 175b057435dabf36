//! Client authentication with real processes: tokens with roles on key prefixes, made and
//! revoked through the API and `hakv token`, kept across a restart, replicated to every
//! member of a cluster (revocation included), refused with 401/403 and stable codes, and
//! counted; and a node off loopback refuses to start without authentication.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::cli::run;
use support::eventually;
use support::{Cluster, Http, ServerProcess};

const ADMIN: &str = "admin-secret-for-tests";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `hakv token create` with the admin token: the new token.
fn create_token(url: &str, name: &str, grants: &[&str]) -> String {
    let mut args = vec!["token", "create", "--name", name, "--url", url, "--token", ADMIN];
    for grant in grants {
        args.extend(["--grant", grant]);
    }
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.trim().to_owned()
}

/// One request on a fresh connection, sent in one write: a refusal comes before the node
/// reads the body (the token is checked first), so a body sent later could meet a closed
/// connection. Answers the status and, for an error, its code.
fn status_and_code(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let body = if method == "PUT" { "{\"value\": 1}" } else { "" };
    let auth = token
        .map(|t| format!("Authorization: {}\r\n", bearer(t)))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = Http::connect(addr).unwrap().raw(request.as_bytes()).unwrap();
    let code = if reply.status >= 400 {
        reply.code()
    } else {
        String::new()
    };
    (reply.status, code)
}

#[test]
fn tokens_with_roles_limit_what_each_client_may_do_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServerProcess::start(&dir.path().join("node"), &["--admin-token", ADMIN]);
    let url = format!("http://{}", node.addr);
    let addr = node.addr;
    let mut http = Http::connect(addr).unwrap();

    // No token, or a made-up one: 401, with the scheme to use.
    let reply = http.get("/data/app/x").unwrap();
    assert_eq!((reply.status, reply.code().as_str()), (401, "unauthorized"));
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    let made_up = "0123456789abcdef.00";
    assert_eq!(status_and_code(addr, "GET", "/data/app/x", Some(made_up)).0, 401);

    let writer = create_token(&url, "writer", &["write:app/"]);
    let reader = create_token(&url, "reader", &["read:app/"]);
    let forbidden = (403, "forbidden".to_string());
    assert_eq!(status_and_code(addr, "PUT", "/data/app/x", Some(&writer)).0, 201);
    assert_eq!(
        status_and_code(addr, "PUT", "/data/other/x", Some(&writer)),
        forbidden
    );
    assert_eq!(status_and_code(addr, "GET", "/data/app/x", Some(&reader)).0, 200);
    assert_eq!(
        status_and_code(addr, "PUT", "/data/app/x", Some(&reader)),
        forbidden
    );
    assert_eq!(
        status_and_code(addr, "DELETE", "/data/app/x", Some(&reader)),
        forbidden
    );
    assert_eq!(
        status_and_code(addr, "GET", "/data/other/x", Some(&reader)),
        forbidden
    );
    assert_eq!(
        status_and_code(addr, "GET", "/data?prefix=app/", Some(&reader)).0,
        200
    );
    assert_eq!(status_and_code(addr, "GET", "/data", Some(&reader)), forbidden);
    // Tokens only manage tokens with an admin grant.
    assert_eq!(
        status_and_code(addr, "GET", "/auth/tokens", Some(&writer)),
        forbidden
    );

    // hakv's own records are neither listed nor reachable as keys, not even by an admin.
    let all = http
        .request(
            "GET",
            "/data?limit=1000",
            &[("Authorization", &bearer(ADMIN))],
            None,
        )
        .unwrap();
    let keys: Vec<String> = all.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["app/x"]);
    let reserved = status_and_code(addr, "GET", "/data/.hakv/tokens/x", Some(ADMIN));
    assert_eq!(reserved, (400, "reserved_key".to_string()));

    // Listed by id, name and grants, never with a secret.
    let listed = run(&["token", "list", "--url", &url, "--token", ADMIN, "--json"]);
    let tokens = listed.json()["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    let secret = reader.split_once('.').unwrap().1;
    assert!(!listed.stdout.contains(secret), "a secret was listed");

    // Records are durable: the tokens still work after a crash and restart.
    node.restart();
    let addr = node.addr;
    let mut http = Http::connect(addr).unwrap();
    let url = format!("http://{}", node.addr);
    assert_eq!(status_and_code(addr, "GET", "/data/app/x", Some(&reader)).0, 200);
    let get = run(&["get", "app/x", "--url", &url, "--token", &reader]);
    assert_eq!((get.code, get.stdout.trim()), (0, "1"), "{}", get.stderr);
    assert_eq!(run(&["get", "app/x", "--url", &url]).code, 4);
    assert_eq!(
        status_and_code(addr, "PUT", "/data/other/y", Some(&writer)),
        forbidden
    );

    // Revoked: refused at once.
    let id = reader.split_once('.').unwrap().0;
    let revoke = run(&["token", "revoke", id, "--url", &url, "--token", ADMIN]);
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    assert_eq!(status_and_code(addr, "GET", "/data/app/x", Some(&reader)).0, 401);
    let again = run(&["token", "revoke", id, "--url", &url, "--token", ADMIN, "--json"]);
    assert_eq!(again.code, 4);
    assert!(again.stdout.contains("token_not_found"), "{}", again.stdout);

    // hakv bench sends its token with every request.
    let bench = |token: &[&str]| {
        let args = [
            &[
                "bench", "--target", &url, "-n", "40", "--keys", "5", "--json", "-q",
            ][..],
            token,
        ];
        run(&args.concat()).json()
    };
    assert_eq!(bench(&["--token", ADMIN])["successful"], 40);
    assert_eq!(bench(&[])["successful"], 0);

    let metrics = http.get("/metrics").unwrap().text();
    for reason in ["forbidden", "invalid"] {
        assert!(
            metrics.contains(&format!("hakv_auth_denied_total{{reason=\"{reason}\"}}")),
            "no {reason} denial counted"
        );
    }
}

#[test]
fn a_token_made_on_one_member_works_on_every_member_and_its_revocation_too() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &["--admin-token", ADMIN]);
    let leader = cluster.leader();
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let token = create_token(
        &format!("http://{}", cluster.member(follower).addr),
        "app",
        &["write:app/"],
    );
    // Every member applies the record: a stale read (no round trip to the leader) is allowed.
    let answers = |expected: u16| {
        (1..=3).all(|id| {
            let addr = cluster.member(id).addr;
            status_and_code(addr, "GET", "/data/app/k?consistency=stale", Some(&token)).0 == expected
        })
    };
    eventually("every member to know the token", Duration::from_secs(30), || {
        answers(404)
    });
    let id = token.split_once('.').unwrap().0;
    let url = format!("http://{}", cluster.member(leader).addr);
    assert_eq!(
        run(&["token", "revoke", id, "--url", &url, "--token", ADMIN]).code,
        0
    );
    eventually(
        "every member to refuse the revoked token",
        Duration::from_secs(30),
        || answers(401),
    );
}

#[test]
fn a_node_off_loopback_refuses_to_start_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    // Refused while the configuration is checked, before anything listens.
    let out = run(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--admin-token") && out.stderr.contains("--insecure"),
        "{}",
        out.stderr
    );
    let short = run(&[
        "serve",
        "--admin-token",
        "short",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(short.stderr.contains("admin_token"), "{}", short.stderr);
}
