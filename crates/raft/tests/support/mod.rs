//! Helpers shared by the multi-node tests: bounded polling and command builders.

use hakv_api::to_canonical_json;
use hakv_store::{Command, Condition, Op};
use std::future::Future;
use std::time::{Duration, Instant};

/// Generous for a loaded 2-core machine; the Raft timings themselves are the defaults
/// (50 ms heartbeat, 150 ms election timeout).
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `check` until it yields a value, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn put(key: &str, value: i64, condition: Condition) -> Command {
    Command {
        at_ms: 1_000,
        op: Op::Put {
            key: key.into(),
            value: to_canonical_json(&value),
            ttl_ms: None,
            condition,
        },
    }
}
