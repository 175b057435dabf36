//! Small histories written by hand, each with a known verdict, including the classic
//! anomalies a replicated store can show (stale reads, lost updates, revisions going back).

use hakv_testkit::{
    CheckOptions, Condition, DeleteCondition, History, Op, OpResult, Outcome, check, check_operations,
    check_with,
};
use serde_json::{Value, json};

fn put(value: Value) -> Op {
    Op::Put { value }
}

fn put_if(value: Value, condition: Condition) -> Op {
    Op::PutIf { value, condition }
}

fn delete(condition: DeleteCondition) -> Op {
    Op::Delete { condition }
}

fn ok(revision: u64) -> OpResult {
    OpResult::Ok { revision }
}

fn found(value: Value, revision: u64) -> OpResult {
    OpResult::Found { value, revision }
}

/// Asserts the verdict and shows the report when it is wrong.
fn assert_linearizable(history: &History) {
    let report = check(history);
    assert!(report.is_linearizable(), "{report}");
}

fn assert_violation(history: &History) -> String {
    let report = check(history);
    assert!(report.has_violation(), "expected a violation, got:\n{report}");
    report.to_string()
}

#[test]
fn a_sequential_history_of_every_kind_of_request_is_linearizable() {
    let h = History::new();
    h.record(1, "k", Op::Get, 0, 1, OpResult::NotFound);
    h.record(1, "k", put(json!("a")), 2, 3, ok(1));
    h.record(1, "k", Op::Get, 4, 5, found(json!("a"), 1));
    h.record(1, "k", put_if(json!("b"), Condition::Revision(1)), 6, 7, ok(2));
    h.record(
        1,
        "k",
        put_if(json!("x"), Condition::Revision(1)),
        8,
        9,
        OpResult::PreconditionFailed { current: Some(2) },
    );
    h.record(
        1,
        "k",
        put_if(json!("x"), Condition::Absent),
        10,
        11,
        OpResult::PreconditionFailed { current: Some(2) },
    );
    h.record(1, "k", delete(DeleteCondition::Revision(2)), 12, 13, ok(3));
    h.record(1, "k", Op::Get, 14, 15, OpResult::NotFound);
    h.record(
        1,
        "k",
        delete(DeleteCondition::Always),
        16,
        17,
        OpResult::NotFound,
    );
    h.record(
        1,
        "k",
        delete(DeleteCondition::Exists),
        18,
        19,
        OpResult::PreconditionFailed { current: None },
    );
    h.record(
        1,
        "k",
        put_if(json!("c"), Condition::Exists),
        20,
        21,
        OpResult::PreconditionFailed { current: None },
    );
    h.record(1, "k", put_if(json!("c"), Condition::Absent), 22, 23, ok(8));
    h.record(1, "k", put(json!("never")), 24, 25, OpResult::Failed);
    h.record(1, "k", Op::Get, 26, 27, found(json!("c"), 8));
    let report = check(&h);
    assert!(report.is_linearizable(), "{report}");
    let key = report.key("k").expect("the key is reported");
    assert_eq!((key.checked, key.ignored), (13, 1), "the failed put is left out");
}

#[test]
fn overlapping_writes_may_take_effect_in_either_order_their_revisions_tell_which() {
    for (rev_a, rev_b) in [(1, 2), (2, 1)] {
        let h = History::new();
        h.record(1, "k", put(json!("a")), 0, 10, ok(rev_a));
        h.record(2, "k", put(json!("b")), 0, 10, ok(rev_b));
        let (last, rev) = if rev_a > rev_b { ("a", rev_a) } else { ("b", rev_b) };
        h.record(3, "k", Op::Get, 20, 30, found(json!(last), rev));
        assert_linearizable(&h);

        // After both completed, the write with the smaller revision cannot be the last one.
        let (first, rev) = if rev_a < rev_b { ("a", rev_a) } else { ("b", rev_b) };
        h.record(3, "k", Op::Get, 40, 50, found(json!(first), rev));
        assert_violation(&h);
    }
}

#[test]
fn a_read_during_a_write_may_see_the_old_or_the_new_value() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, ok(1));
    h.record(1, "k", put(json!("b")), 10, 20, ok(2));
    h.record(2, "k", Op::Get, 11, 12, found(json!("b"), 2));
    h.record(3, "k", Op::Get, 13, 14, found(json!("a"), 1));
    // Client 3 read "a" after client 2 had seen "b": no single order explains both.
    let text = assert_violation(&h);
    assert!(text.contains("found \"a\" @1"), "{text}");
}

#[test]
fn a_stale_read_after_a_completed_write_is_not_linearizable() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, ok(1));
    h.record(1, "k", put(json!("b")), 2, 3, ok(2));
    let stale = h.record(2, "k", Op::Get, 4, 5, found(json!("a"), 1));
    let report = check(&h);
    println!("{report}");
    let key = report.violations().next().expect("a violation");
    let Outcome::NotLinearizable(explanation) = &key.outcome else {
        unreachable!()
    };
    assert_eq!(key.key, "k");
    assert_eq!(explanation.blocker.id, stale, "{report}");
    assert_eq!(
        explanation.prefix.len(),
        2,
        "both writes fit before the read went wrong"
    );
    assert_eq!(explanation.state_after_prefix, "\"b\" @2");
}

#[test]
fn reading_a_value_that_was_never_written_is_not_linearizable() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 10, ok(1));
    h.record(2, "k", Op::Get, 5, 6, found(json!("z"), 1));
    assert_violation(&h);
}

#[test]
fn an_unknown_write_may_be_observed_later() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, ok(1));
    h.record(1, "k", put(json!("b")), 2, 3, OpResult::Unknown);
    h.record(2, "k", Op::Get, 4, 5, found(json!("a"), 1));
    // Applied long after its client gave up: the revision is learnt only from the read.
    h.record(2, "k", Op::Get, 100, 101, found(json!("b"), 57));
    h.record(
        2,
        "k",
        put_if(json!("c"), Condition::Revision(57)),
        102,
        103,
        ok(58),
    );
    assert_linearizable(&h);
}

#[test]
fn an_unknown_write_may_never_take_effect() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, ok(1));
    h.record(1, "k", put(json!("b")), 2, 3, OpResult::Unknown);
    h.record(1, "k", delete(DeleteCondition::Always), 4, 5, OpResult::Unknown);
    h.record(2, "k", Op::Get, 6, 7, found(json!("a"), 1));
    h.record(2, "k", Op::Get, 8, 9, found(json!("a"), 1));
    assert_linearizable(&h);
}

#[test]
fn an_unknown_write_cannot_be_seen_before_it_was_sent() {
    let h = History::new();
    h.record(2, "k", Op::Get, 0, 1, found(json!("b"), 3));
    h.record(1, "k", put(json!("b")), 2, 3, OpResult::Unknown);
    assert_violation(&h);
}

#[test]
fn an_unknown_write_takes_effect_once_with_one_revision() {
    let h = History::new();
    h.record(1, "k", put(json!("b")), 0, 1, OpResult::Unknown);
    h.record(2, "k", Op::Get, 2, 3, found(json!("b"), 5));
    h.record(2, "k", Op::Get, 4, 5, found(json!("b"), 6));
    assert_violation(&h);
}

#[test]
fn a_failed_write_must_not_be_observed() {
    let h = History::new();
    h.record(1, "k", put(json!("b")), 0, 1, OpResult::Failed);
    h.record(2, "k", Op::Get, 2, 3, found(json!("b"), 1));
    assert_violation(&h);
}

#[test]
fn two_successful_compare_and_sets_from_one_revision_are_a_lost_update() {
    let h = History::new();
    h.record(1, "counter", put(json!(0)), 0, 1, ok(1));
    h.record(
        1,
        "counter",
        put_if(json!(1), Condition::Revision(1)),
        2,
        10,
        ok(2),
    );
    h.record(
        2,
        "counter",
        put_if(json!(1), Condition::Revision(1)),
        2,
        10,
        ok(3),
    );
    assert_violation(&h);
}

#[test]
fn one_compare_and_set_wins_and_the_other_sees_the_winner() {
    let h = History::new();
    h.record(1, "counter", put(json!(0)), 0, 1, ok(1));
    h.record(
        1,
        "counter",
        put_if(json!(1), Condition::Revision(1)),
        2,
        10,
        ok(2),
    );
    h.record(
        2,
        "counter",
        put_if(json!(1), Condition::Revision(1)),
        2,
        10,
        OpResult::PreconditionFailed { current: Some(2) },
    );
    assert_linearizable(&h);
}

#[test]
fn a_revision_going_backwards_is_not_linearizable() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, ok(5));
    h.record(1, "k", put(json!("b")), 2, 3, ok(3));
    assert_violation(&h);

    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, ok(5));
    h.record(1, "k", put(json!("a")), 2, 3, ok(5));
    assert_violation(&h);
}

#[test]
fn a_read_after_a_completed_delete_must_not_find_the_key() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, ok(1));
    h.record(1, "k", delete(DeleteCondition::Always), 2, 3, ok(2));
    h.record(2, "k", Op::Get, 4, 5, found(json!("a"), 1));
    assert_violation(&h);
}

#[test]
fn the_same_revision_on_two_keys_is_a_violation() {
    let h = History::new();
    h.record(1, "a", put(json!(1)), 0, 1, ok(7));
    h.record(1, "b", put(json!(1)), 2, 3, ok(7));
    let report = check(&h);
    assert!(
        report
            .keys
            .iter()
            .all(|k| matches!(k.outcome, Outcome::Linearizable))
    );
    assert_eq!(report.revision_conflicts.len(), 1, "{report}");
    assert!(report.has_violation() && !report.is_linearizable());
}

#[test]
fn a_result_the_api_never_gives_is_not_linearizable() {
    let h = History::new();
    h.record(1, "k", put(json!("a")), 0, 1, OpResult::NotFound);
    assert_violation(&h);
}

#[test]
fn an_exhausted_budget_is_neither_a_proof_nor_a_violation() {
    let h = History::new();
    for i in 0..20 {
        h.record(i, "k", put(json!(i)), 0, 10, ok(i + 1));
    }
    let report = check_with(
        &h,
        &CheckOptions {
            step_budget_per_key: 3,
        },
    );
    assert!(!report.is_linearizable() && !report.has_violation(), "{report}");
    assert!(matches!(
        report.keys[0].outcome,
        Outcome::BudgetExceeded { budget: 3 }
    ));
    assert!(report.to_string().starts_with("UNDECIDED"), "{report}");
}

#[test]
fn recorded_live_requests_that_never_complete_count_as_unknown() {
    let h = History::new();
    let first = h.invoke(1, "k", put(json!("a")));
    h.complete(first, ok(1));
    let _never_answered = h.invoke(1, "k", put(json!("b")));
    let read = h.invoke(2, "k", Op::Get);
    h.complete(read, found(json!("b"), 2));
    assert_linearizable(&h);
}

#[test]
fn a_saved_history_checks_the_same_after_a_json_round_trip() {
    let h = History::new();
    h.record(1, "k", put(json!({"n": [1, 2]})), 0, 1, ok(1));
    h.record(2, "k", Op::Get, 2, 3, found(json!({"n": [1, 2]}), 0));
    let text = serde_json::to_string(&h.operations()).expect("serializable");
    let restored: Vec<hakv_testkit::Operation> = serde_json::from_str(&text).expect("round trip");
    let report = check_operations(&restored, &CheckOptions::default());
    assert!(report.has_violation(), "{report}");
    assert_eq!(restored, h.operations());
}
