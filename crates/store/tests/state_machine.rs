//! The state machine's contract: conditions, revisions, expiry and durability across reopen.

use hakv_api::{Revision, to_canonical_json};
use hakv_store::{Command, Condition, Op, Outcome, StateMachine, StoreConfig};
use serde_json::json;

fn open(dir: &std::path::Path) -> StateMachine {
    StateMachine::open(&StoreConfig::new(dir.to_path_buf(), 8 << 20)).unwrap()
}

fn put(key: &str, value: serde_json::Value, condition: Condition) -> Command {
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

fn apply(sm: &StateMachine, commands: &[Command]) -> Vec<Outcome> {
    sm.apply_batch(commands, |_, _| {}).unwrap().0
}

#[test]
fn revisions_grow_and_conditions_are_decided_in_batch_order() {
    let dir = tempfile::tempdir().unwrap();
    let sm = open(dir.path());
    let outcomes = apply(
        &sm,
        &[
            put("a", json!(1), Condition::Absent),
            put("a", json!(2), Condition::Absent),
            put("a", json!(3), Condition::Revision(Revision(1))),
            put("a", json!(4), Condition::Revision(Revision(1))),
            Command {
                at_ms: 1_000,
                op: Op::Delete {
                    key: "missing".into(),
                    condition: Condition::Always,
                },
            },
        ],
    );
    assert_eq!(
        outcomes,
        vec![
            Outcome::Written {
                revision: Revision(1),
                created: true
            },
            Outcome::ConditionFailed {
                current: Some(Revision(1))
            },
            Outcome::Written {
                revision: Revision(2),
                created: false
            },
            Outcome::ConditionFailed {
                current: Some(Revision(2))
            },
            Outcome::NotFound,
        ]
    );
    let record = sm.get("a").unwrap().unwrap();
    assert_eq!(record.revision, Revision(2));
    assert_eq!(record.value.as_bytes(), b"3");
    assert_eq!(sm.revision(), Revision(2));
}

#[test]
fn state_and_revision_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sm = open(dir.path());
        apply(
            &sm,
            &[
                put("x", json!({"n": 1}), Condition::Always),
                put("y", json!("v"), Condition::Always),
            ],
        );
        apply(
            &sm,
            &[Command {
                at_ms: 1_000,
                op: Op::Delete {
                    key: "y".into(),
                    condition: Condition::Always,
                },
            }],
        );
    }
    let sm = open(dir.path());
    assert_eq!(sm.revision(), Revision(3));
    assert_eq!(sm.get("x").unwrap().unwrap().value.as_bytes(), br#"{"n":1}"#);
    assert!(sm.get("y").unwrap().is_none());
    let next = apply(&sm, &[put("z", json!(0), Condition::Always)]);
    assert_eq!(
        next,
        vec![Outcome::Written {
            revision: Revision(4),
            created: true
        }]
    );
}

#[test]
fn expired_keys_are_absent_to_commands_and_purged_by_expire() {
    let dir = tempfile::tempdir().unwrap();
    let sm = open(dir.path());
    let ttl = Command {
        at_ms: 1_000,
        op: Op::Put {
            key: "t".into(),
            value: to_canonical_json(&json!(1)),
            ttl_ms: Some(500),
            condition: Condition::Always,
        },
    };
    apply(&sm, &[ttl]);
    assert!(sm.get("t").unwrap().unwrap().is_live_at(1_499));
    assert!(!sm.get("t").unwrap().unwrap().is_live_at(1_500));
    assert!(sm.due_for_expiry(1_499, 10).unwrap().is_empty());
    assert_eq!(
        sm.due_for_expiry(1_500, 10).unwrap(),
        vec![("t".to_string(), Revision(1))]
    );
    assert_eq!(sm.scan("", None, 10, 1_600).unwrap().len(), 0);

    // After expiry, create-only succeeds: the expired key counts as absent.
    let mut recreate = put("t", json!(2), Condition::Absent);
    recreate.at_ms = 1_600;
    // A stale purge (for revision 1) must not remove the new value.
    let stale_purge = Command {
        at_ms: 1_700,
        op: Op::Expire {
            key: "t".into(),
            revision: Revision(1),
        },
    };
    let outcomes = apply(&sm, &[recreate, stale_purge]);
    assert_eq!(
        outcomes,
        vec![
            Outcome::Written {
                revision: Revision(2),
                created: true
            },
            Outcome::Unchanged
        ]
    );
    assert_eq!(sm.get("t").unwrap().unwrap().value.as_bytes(), b"2");
    assert!(
        sm.due_for_expiry(u64::MAX - 1, 10).unwrap().is_empty(),
        "the old index entry is gone"
    );
}

#[test]
fn scan_pages_through_a_prefix_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let sm = open(dir.path());
    let commands: Vec<_> = (0..50)
        .map(|i| put(&format!("p/{i:03}"), json!(i), Condition::Always))
        .collect();
    apply(&sm, &commands);
    apply(
        &sm,
        &[
            put("q", json!(0), Condition::Always),
            put("o", json!(0), Condition::Always),
        ],
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = sm.scan("p/", cursor.as_deref(), 7, 0).unwrap();
        if page.is_empty() {
            break;
        }
        cursor = Some(page.last().unwrap().0.clone());
        seen.extend(page.into_iter().map(|(k, _)| k));
    }
    let expected: Vec<_> = (0..50).map(|i| format!("p/{i:03}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn one_key_written_many_times_in_a_batch_keeps_only_the_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let sm = open(dir.path());
    let with_ttl = |value: i64, ttl_ms| Command {
        at_ms: 1_000,
        op: Op::Put {
            key: "k".into(),
            value: to_canonical_json(&value),
            ttl_ms,
            condition: Condition::Always,
        },
    };
    apply(
        &sm,
        &[
            with_ttl(1, Some(100)),
            with_ttl(2, None),
            with_ttl(3, Some(5_000)),
        ],
    );
    let record = sm.get("k").unwrap().unwrap();
    assert_eq!(
        (record.value.as_bytes(), record.revision, record.expires_at_ms),
        (&b"3"[..], Revision(3), Some(6_000))
    );
    // Only the final expiry is indexed: nothing is due at the first TTL.
    assert!(sm.due_for_expiry(1_200, 10).unwrap().is_empty());
    assert_eq!(
        sm.due_for_expiry(6_000, 10).unwrap(),
        vec![("k".to_string(), Revision(3))]
    );
    drop(sm);
    let sm = open(dir.path());
    assert_eq!(
        sm.get("k").unwrap().unwrap().value.as_bytes(),
        b"3",
        "the same after journal replay"
    );
}

#[tokio::test]
async fn waiting_for_a_revision_ends_when_it_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let sm = std::sync::Arc::new(open(dir.path()));
    apply(&sm, &[put("a", json!(1), Condition::Always)]);
    // Already applied: returns at once.
    sm.wait_for_revision(Revision(1)).await;
    let waiter = tokio::spawn({
        let sm = sm.clone();
        async move { sm.wait_for_revision(Revision(3)).await }
    });
    // The test runs on one thread: yielding lets the waiter run until it blocks.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished(), "revision 3 is not applied yet");
    apply(&sm, &[put("b", json!(2), Condition::Always)]);
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished(), "revision 2 is not enough");
    apply(&sm, &[put("c", json!(3), Condition::Always)]);
    tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
        .await
        .expect("the waiter wakes up once revision 3 is applied")
        .unwrap();
}

fn put_ttl(key: &str, at_ms: u64, ttl_ms: u64) -> Command {
    Command {
        at_ms,
        op: Op::Put {
            key: key.into(),
            value: to_canonical_json(&json!(1)),
            ttl_ms: Some(ttl_ms),
            condition: Condition::Always,
        },
    }
}

#[test]
fn time_in_the_state_never_goes_backward_whatever_the_commands_carry() {
    const T0: u64 = 1_800_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let sm = open(dir.path());
    assert_eq!(sm.clock_ms(), 0);
    apply(&sm, &[put_ttl("a", T0, 1_000)]);
    assert_eq!(sm.clock_ms(), T0);
    assert_eq!(sm.next_expiry().unwrap(), Some(T0 + 1_000));
    // A command stamped an hour earlier (a clock stepped back, a leader behind the last one)
    // takes effect at the state's clock: its TTL counts from there, and it sees "a" as the
    // state does, live.
    let earlier = put_ttl("b", T0 - 3_600_000, 500);
    let create_a = Command {
        at_ms: T0 - 3_600_000,
        op: Op::Put {
            key: "a".into(),
            value: to_canonical_json(&json!(2)),
            ttl_ms: None,
            condition: Condition::Absent,
        },
    };
    let outcomes = apply(&sm, &[earlier, create_a]);
    assert_eq!(
        outcomes[1],
        Outcome::ConditionFailed {
            current: Some(Revision(1))
        }
    );
    assert_eq!(sm.get("b").unwrap().unwrap().expires_at_ms, Some(T0 + 500));
    assert_eq!(sm.clock_ms(), T0);
    // Once a command's time passes the expiry, the key is gone to every later command, even
    // one stamped before it.
    apply(&sm, &[put_ttl("c", T0 + 2_000, 60_000)]);
    let late = Command {
        at_ms: T0 - 1_000,
        op: Op::Delete {
            key: "a".into(),
            condition: Condition::Always,
        },
    };
    assert_eq!(apply(&sm, &[late]), vec![Outcome::NotFound]);

    // The clock is durable, and a snapshot carries it.
    drop(sm);
    let sm = open(dir.path());
    assert_eq!(sm.clock_ms(), T0 + 2_000);
    let other = tempfile::tempdir().unwrap();
    let copy = open(other.path());
    copy.import_snapshot(&sm.export_snapshot().unwrap().bytes, &[], |_| {})
        .unwrap();
    assert_eq!(copy.clock_ms(), T0 + 2_000);
}
