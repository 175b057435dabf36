//! A full disk, for real: a single node's data directory on a small tmpfs that a filler file
//! fills while 8 writers write 1 KB values. Writes get 507 `disk_full` (none hangs), reads go
//! on, `/ready` and `/metrics` say why, writes resume by themselves once space is freed, and
//! after `kill -9` the node holds every acknowledged write and none that was refused.
//!
//! Mounting a tmpfs needs root (CI runs as root); elsewhere the test says so and does nothing.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Http, ServerProcess, Tmpfs};

fn put(addr: std::net::SocketAddr, key: &str, body: &str) -> u16 {
    let mut http = Http::connect_with_timeout(addr, Duration::from_secs(15)).unwrap();
    let reply = http
        .send_json("PUT", &format!("/data/{key}"), body, &[])
        .expect("an answer within the timeout: a write must never hang");
    if reply.status == 507 {
        assert_eq!(reply.code(), "disk_full", "{}", reply.text());
    }
    reply.status
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_once_space_is_freed() {
    let parent = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&parent.path().join("disk"), "48m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    const RESERVE: u64 = 8 << 20;
    let mut server = ServerProcess::start(&disk.dir.join("node"), &["--disk-reserve", "8MiB"]);
    // Leave about 4 MiB above the reserve: the writers fill it.
    disk.fill_leaving(RESERVE + (4 << 20));

    let value = format!("{{\"value\":\"{}\"}}", "v".repeat(1000));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let addr = server.addr;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (acked, refused, value) = (acked.clone(), refused.clone(), value.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                for i in 0..100_000 {
                    let key = format!("w{w}-{i}");
                    match put(addr, &key, &value) {
                        200 | 201 => acked.lock().unwrap().push(key),
                        507 => {
                            refused.lock().unwrap().push(key);
                            return;
                        }
                        other => panic!("PUT {key}: unexpected {other}"),
                    }
                    assert!(Instant::now() < deadline, "writer {w} never saw the disk fill");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    assert_eq!(refused.len(), 8, "every writer was refused once the disk filled");
    assert!(!acked.is_empty());

    // Reads go on; /ready and /metrics say what is wrong.
    let mut http = Http::connect(addr).unwrap();
    assert_eq!(http.get(&format!("/data/{}", acked[0])).unwrap().status, 200);
    let ready = http.get("/ready").unwrap();
    assert_eq!(ready.status, 200);
    assert!(ready.text().contains("disk is nearly full"), "{}", ready.text());
    let metrics = http.get("/metrics").unwrap().text();
    assert!(metrics.contains("hakv_disk_writes_refused 1"), "{metrics}");
    assert_eq!(put(addr, "still-full", &value), 507);

    // Space is freed: writes resume by themselves, without a restart.
    disk.free();
    let freed = Instant::now();
    while put(addr, "after-free", &value) == 507 {
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "writes did not resume within 5 s of freeing space"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "{} writes acknowledged before the disk filled; writes resumed {:?} after space was freed",
        acked.len(),
        freed.elapsed()
    );

    // A crash keeps exactly what was acknowledged.
    server.restart();
    let mut http = Http::connect(server.addr).unwrap();
    for key in acked.iter().chain(["after-free".to_owned()].iter()) {
        assert_eq!(
            http.get(&format!("/data/{key}")).unwrap().status,
            200,
            "{key} was lost"
        );
    }
    for key in refused.iter().chain(["still-full".to_owned()].iter()) {
        assert_eq!(
            http.get(&format!("/data/{key}")).unwrap().status,
            404,
            "{key} was refused but written"
        );
    }
}
