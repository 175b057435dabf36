//! TLS end to end, with real processes and real handshakes: a mutual-TLS cluster behind a
//! TLS balancer, a member whose certificate comes from another CA refused by the others,
//! plain HTTP on a TLS port, and certificates reloaded on SIGHUP while open connections go
//! on.

mod support;

use hakv_client::{Client, Consistency, WriteOptions};
use hakv_tls::generate::Authority;
use hakv_tls::{ClientTls, ClientTlsFiles};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{Cluster, HakvProcess, Http, ServerProcess, eventually, metric};

/// A CA written to `dir/NAME-ca.pem`, which issues certificates for loopback.
struct TestCa {
    authority: Authority,
    dir: PathBuf,
    name: &'static str,
}

impl TestCa {
    fn new(dir: &Path, name: &'static str) -> TestCa {
        let authority = Authority::new(&format!("{name} test CA")).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), authority.cert_pem()).unwrap();
        TestCa {
            authority,
            dir: dir.to_path_buf(),
            name,
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A certificate for loopback: (cert, key) paths.
    fn issue(&self, holder: &str) -> (PathBuf, PathBuf) {
        let cert = self.dir.join(format!("{}-{holder}.pem", self.name));
        let key = self.dir.join(format!("{}-{holder}-key.pem", self.name));
        self.issue_to(holder, &cert, &key);
        (cert, key)
    }

    fn issue_to(&self, holder: &str, cert: &Path, key: &Path) {
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        self.authority
            .issue(holder, &names)
            .unwrap()
            .write(cert, key)
            .unwrap();
    }
}

fn client_tls(ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> ClientTls {
    ClientTls::load(ClientTlsFiles {
        ca: Some(ca.to_path_buf()),
        cert: identity.map(|(cert, _)| cert.clone()),
        key: identity.map(|(_, key)| key.clone()),
    })
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_mutual_tls_cluster_serves_through_a_tls_balancer_and_refuses_a_stranger() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "cluster");
    let stranger_ca = TestCa::new(dir.path(), "stranger");
    let member = ca.issue("member");
    let client = ca.issue("client");
    let stranger = stranger_ca.issue("member");
    let balancer_cert = ca.issue("balancer");

    // Every member trusts only the cluster CA, both ways; member 3 presents a certificate of
    // another CA, so neither side of any connection between it and the others verifies.
    let ca_file = ca.ca();
    let extra = ["--tls-ca", s(&ca_file), "--tls-client-ca", s(&ca_file)];
    let mut cluster = Cluster::prepare(dir.path(), 3, &extra);
    for id in 1..=3 {
        let (cert, key) = if id == 3 { &stranger } else { &member };
        cluster.member_mut(id).env = vec![
            ("HAKV_TLS_CERT".into(), s(cert).into()),
            ("HAKV_TLS_KEY".into(), s(key).into()),
        ];
        cluster.start_member(id);
    }
    let url = |id: u64| format!("https://{}", cluster.member(id).addr);
    let tls = client_tls(&ca.ca(), Some(&client));
    let rt = runtime();
    let members: Vec<Client> = (1..=2)
        .map(|id| Client::with_tls(&url(id), Duration::from_secs(5), Some(&tls)).unwrap())
        .collect();

    // Members 1 and 2 are a majority: a leader, and writes through either (a follower
    // forwards to the leader over mutual TLS).
    eventually("a leader among members 1 and 2", Duration::from_secs(30), || {
        rt.block_on(members[0].status())
            .is_ok_and(|status| status.cluster.is_some_and(|c| c.body["leader"].is_object()))
    });
    for (i, member) in members.iter().enumerate() {
        let key = format!("via-{}", i + 1);
        eventually("a write through each member", Duration::from_secs(30), || {
            rt.block_on(member.put(&key, &json!(i), &WriteOptions::default()))
                .is_ok()
        });
    }
    for member in &members {
        for i in 0..2 {
            let read = rt.block_on(member.get(&format!("via-{}", i + 1), Consistency::Linearizable));
            assert_eq!(read.unwrap().unwrap().data, json!(i));
        }
    }

    // The stranger never got the writes: the others refuse its certificate as a client's, and
    // cannot verify it as a server's.
    let stranger_tls = client_tls(&stranger_ca.ca(), Some(&client));
    let stranger_client = Client::with_tls(&url(3), Duration::from_secs(5), Some(&stranger_tls)).unwrap();
    let stale = rt.block_on(stranger_client.get("via-1", Consistency::Stale));
    assert!(
        !matches!(stale, Ok(Some(_))),
        "member 3 must not have been sent the log: {stale:?}"
    );
    let metrics = rt.block_on(fetch(&tls, &format!("{}/metrics", url(1))));
    let refused = metric(&metrics, "hakv_tls_handshake_failures_total");
    assert!(refused > 0.0, "member 1 counted no refused handshake:\n{metrics}");

    // A client without a certificate of the cluster's CA is refused too.
    let anonymous = client_tls(&ca.ca(), None);
    let anonymous = Client::with_tls(&url(1), Duration::from_secs(5), Some(&anonymous)).unwrap();
    assert!(
        rt.block_on(anonymous.get("via-1", Consistency::Linearizable))
            .is_err()
    );

    // Plain HTTP to a TLS port is told to use https.
    let reply = Http::connect(cluster.member(1).addr)
        .unwrap()
        .get("/health")
        .unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "tls_required");

    // The balancer serves https and calls the members with its own certificate.
    let (m1, m2) = (
        cluster.member(1).addr.to_string(),
        cluster.member(2).addr.to_string(),
    );
    let balancer = HakvProcess::spawn(
        &[
            "balance",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--leader-aware",
            "--backend",
            &m1,
            "--backend",
            &m2,
            "--tls-cert",
            s(&balancer_cert.0),
            "--tls-key",
            s(&balancer_cert.1),
            "--backend-ca",
            s(&ca.ca()),
            "--backend-cert",
            s(&balancer_cert.0),
            "--backend-key",
            s(&balancer_cert.1),
        ],
        &dir.path().join("balancer.log"),
    );
    let through = client_tls(&ca.ca(), None);
    let through = Client::with_tls(
        &format!("https://{}", balancer.addr),
        Duration::from_secs(5),
        Some(&through),
    )
    .unwrap();
    eventually("a write through the balancer", Duration::from_secs(30), || {
        rt.block_on(through.put("via-balancer", &json!("yes"), &WriteOptions::default()))
            .is_ok()
    });
    let read = rt.block_on(through.get("via-balancer", Consistency::Linearizable));
    assert_eq!(read.unwrap().unwrap().data, json!("yes"));

    // `hakv get` and `hakv bench` take the CA (and a client certificate) as flags.
    let balancer_url = format!("https://{}", balancer.addr);
    let get = support::cli::run(&["get", "via-balancer", "--url", &balancer_url, "--ca", s(&ca.ca())]);
    assert_eq!((get.code, get.stdout.trim()), (0, "\"yes\""), "{}", get.stderr);
    let member_url = url(2);
    let get = support::cli::run(&[
        "get",
        "via-1",
        "--url",
        &member_url,
        "--ca",
        s(&ca.ca()),
        "--cert",
        s(&client.0),
        "--key",
        s(&client.1),
    ]);
    assert_eq!((get.code, get.stdout.trim()), (0, "0"), "{}", get.stderr);
    let untrusted = support::cli::run(&["get", "via-balancer", "--url", &balancer_url]);
    assert_eq!(
        untrusted.code, 5,
        "an unknown issuer is a connection failure: {}",
        untrusted.stderr
    );
    let bench = support::cli::run(&[
        "bench",
        "--target",
        &balancer_url,
        "--ca",
        s(&ca.ca()),
        "-n",
        "200",
        "-c",
        "4",
        "--keys",
        "10",
        "--json",
        "-q",
    ]);
    let report = bench.json();
    assert_eq!(report["successful"], 200, "{report}");
}

/// The body of `GET url`, over TLS with `tls`.
async fn fetch(tls: &ClientTls, url: &str) -> String {
    use http_body_util::BodyExt;
    let connector = hakv_tls::connector(
        hyper_util::client::legacy::connect::HttpConnector::new(),
        Some(tls),
    );
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(connector);
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn certificates_are_reloaded_on_sighup_while_open_connections_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new(dir.path(), "first");
    let second = TestCa::new(dir.path(), "second");
    let (cert, key) = (dir.path().join("node.pem"), dir.path().join("node-key.pem"));
    first.issue_to("node", &cert, &key);
    let node = ServerProcess::start(
        &dir.path().join("data"),
        &["--tls-cert", s(&cert), "--tls-key", s(&key)],
    );
    let url = format!("https://{}", node.addr);
    let rt = runtime();
    let trusts_first = client_tls(&first.ca(), None);
    let trusts_second = client_tls(&second.ca(), None);
    let old = Client::with_tls(&url, Duration::from_secs(5), Some(&trusts_first)).unwrap();
    rt.block_on(old.put("k", &json!(1), &WriteOptions::default()))
        .unwrap();

    // New certificate files, then SIGHUP: new connections get the second CA's certificate.
    second.issue_to("node", &cert, &key);
    signal(node.pid(), "HUP");
    eventually(
        "new connections to present the new certificate",
        Duration::from_secs(30),
        || {
            let fresh = Client::with_tls(&url, Duration::from_secs(2), Some(&trusts_second)).unwrap();
            rt.block_on(fresh.get("k", Consistency::Linearizable)).is_ok()
        },
    );
    let fresh_old = Client::with_tls(&url, Duration::from_secs(2), Some(&trusts_first)).unwrap();
    assert!(
        rt.block_on(fresh_old.get("k", Consistency::Linearizable))
            .is_err()
    );
    // The connection opened before the reload is still served (a new one would be refused:
    // this client trusts only the first CA).
    let read = rt.block_on(old.get("k", Consistency::Linearizable));
    assert_eq!(read.unwrap().unwrap().data, json!(1));

    // A broken file is refused and logged; the node keeps the certificate it has.
    std::fs::write(&cert, "not a certificate").unwrap();
    signal(node.pid(), "HUP");
    eventually("the failed reload to be logged", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.path().join("data.log"))
            .unwrap_or_default()
            .contains("TLS reload failed")
    });
    let fresh = Client::with_tls(&url, Duration::from_secs(2), Some(&trusts_second)).unwrap();
    assert_eq!(
        rt.block_on(fresh.get("k", Consistency::Linearizable))
            .unwrap()
            .unwrap()
            .data,
        json!(1)
    );
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
