//! Crash safety and concurrency: what a client was told succeeded survives `kill -9`, and
//! compare-and-set never loses an update.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Http, ServerProcess};

/// One acknowledged write: the key, the value sent, and the revision the node answered.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    value: u64,
    revision: u64,
}

#[test]
fn acknowledged_writes_survive_kill_9_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&dir.path().join("node"), &[]);
    let mut all_acked: Vec<Acked> = Vec::new();
    let mut highest_revision = 0;
    for round in 0..3 {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let addr = server.addr;
        let writers: Vec<_> = (0..6)
            .map(|writer| {
                let acked = acked.clone();
                std::thread::spawn(move || {
                    let Ok(mut http) = Http::connect(addr) else { return };
                    // Bounded: the node is killed long before this many writes.
                    for i in 0..100_000u64 {
                        let key = format!("r{round}/w{writer}/{i}");
                        let value = round * 1_000_000 + writer * 100_000 + i;
                        match http.send_json(
                            "PUT",
                            &format!("/data/{key}"),
                            &format!("{{\"value\": {value}}}"),
                            &[],
                        ) {
                            Ok(reply) if reply.status == 201 => acked.lock().unwrap().push(Acked {
                                key,
                                value,
                                revision: reply.revision(),
                            }),
                            Ok(reply) => panic!("unexpected answer {} {}", reply.status, reply.text()),
                            // The node died: the outcome of this write is unknown, stop.
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        // Kill once a good number of writes are acknowledged (bounded wait).
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < 300 {
            assert!(Instant::now() < deadline, "writes are not being acknowledged");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill9();
        for writer in writers {
            writer.join().unwrap();
        }
        all_acked.extend(acked.lock().unwrap().iter().cloned());
        server.restart();

        let mut http = Http::connect(server.addr).unwrap();
        for write in &all_acked {
            let reply = http.get(&format!("/data/{}", write.key)).unwrap();
            assert_eq!(
                reply.status, 200,
                "acknowledged write {write:?} was lost in round {round}"
            );
            assert_eq!(reply.json()["data"], write.value, "{write:?}");
            assert_eq!(reply.revision(), write.revision, "{write:?}");
        }
        let max_acked = all_acked.iter().map(|w| w.revision).max().unwrap();
        let probe = http
            .send_json("PUT", "/data/probe", r#"{"value": 0}"#, &[])
            .unwrap();
        assert!(
            probe.revision() > max_acked.max(highest_revision),
            "revisions only grow across crashes"
        );
        highest_revision = probe.revision();
    }
    assert!(all_acked.len() >= 900);
}

#[test]
fn concurrent_if_match_increments_count_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("node"), &[]);
    let mut http = Http::connect(server.addr).unwrap();
    assert_eq!(
        http.send_json("PUT", "/data/counter", r#"{"value": 0}"#, &[])
            .unwrap()
            .status,
        201
    );
    let addr = server.addr;
    let successes: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || {
                    let mut http = Http::connect(addr).unwrap();
                    let mut ok = 0u64;
                    for _ in 0..60 {
                        let read = http.get("/data/counter").unwrap();
                        let n = read.json()["data"].as_u64().unwrap();
                        let tag = format!("\"{}\"", read.revision());
                        let write = http
                            .send_json(
                                "PUT",
                                "/data/counter",
                                &format!("{{\"value\": {}}}", n + 1),
                                &[("If-Match", &tag)],
                            )
                            .unwrap();
                        match write.status {
                            200 => ok += 1,
                            412 => {}
                            other => panic!("unexpected status {other}: {}", write.text()),
                        }
                    }
                    ok
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let final_value = http.get("/data/counter").unwrap().json()["data"]
        .as_u64()
        .unwrap();
    assert_eq!(
        final_value, successes,
        "every 2xx increment counted, no lost update"
    );
    assert!(successes > 0);
}
