//! Group commit: many concurrent proposers, one total order, every outcome durable.

use hakv_api::{Revision, to_canonical_json};
use hakv_store::{Command, Condition, NoHook, Op, Outcome, StateMachine, StoreConfig, Writer, WriterConfig};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_compare_and_set_increments_never_lose_an_update() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path().to_path_buf(), 8 << 20);
    let sm = Arc::new(StateMachine::open(&config).unwrap());
    let (writer, thread) = Writer::start(sm.clone(), Arc::new(NoHook), WriterConfig::default());
    let put = |value: u64, condition| Command {
        at_ms: 0,
        op: Op::Put {
            key: "counter".into(),
            value: to_canonical_json(&value),
            ttl_ms: None,
            condition,
        },
    };
    writer.propose(put(0, Condition::Always)).await.unwrap();

    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (writer, sm) = (writer.clone(), sm.clone());
        tasks.push(tokio::spawn(async move {
            let mut successes = 0u64;
            for _ in 0..40 {
                let record = sm.get("counter").unwrap().unwrap();
                let n: u64 = serde_json::from_slice(record.value.as_bytes()).unwrap();
                match writer
                    .propose(put(n + 1, Condition::Revision(record.revision)))
                    .await
                    .unwrap()
                {
                    Outcome::Written { .. } => successes += 1,
                    Outcome::ConditionFailed { .. } => {}
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
            successes
        }));
    }
    let mut successes = 0;
    for task in tasks {
        successes += task.await.unwrap();
    }
    let record = sm.get("counter").unwrap().unwrap();
    let n: u64 = serde_json::from_slice(record.value.as_bytes()).unwrap();
    assert_eq!(n, successes, "every acknowledged increment is in the final count");
    assert_eq!(record.revision, Revision(successes + 1));
    drop(writer);
    thread.join().unwrap();
}
