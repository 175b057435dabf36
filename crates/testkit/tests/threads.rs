//! Real client threads against a register that is linearizable by construction (one lock,
//! one revision counter), with faults injected: the checker must accept every such history,
//! and reject it after one read's answer is corrupted.

mod support;

use hakv_testkit::{CheckOptions, History, Op, OpResult, check, check_operations};
use rand::Rng;
use std::sync::Mutex;
use support::corrupt;
use support::register::Register;
use support::workload::{Fate, Workload};

const CLIENTS: u64 = 6;
const OPS_PER_CLIENT: usize = 150;
const KEYS: usize = 3;

fn run(seed: u64) -> History {
    let history = History::new();
    let register = Mutex::new(Register::default());
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (history, register) = (&history, &register);
            scope.spawn(move || run_client(history, register, Workload::new(seed, client, KEYS), client));
        }
    });
    history
}

fn run_client(history: &History, register: &Mutex<Register>, mut workload: Workload, client: u64) {
    let apply = |key: &str, op: &Op| register.lock().expect("no panics under the lock").apply(key, op);
    // Writes that timed out but are still on their way, applied after their client gave up.
    let mut late: Vec<(String, Op)> = Vec::new();
    for _ in 0..OPS_PER_CLIENT {
        if !late.is_empty() && workload.rng.random_bool(0.3) {
            let (key, op) = late.swap_remove(0);
            apply(&key, &op);
        }
        let (key, op) = workload.next_op();
        let fate = workload.fate();
        let id = history.invoke(client, key.clone(), op.clone());
        let result = match fate {
            Fate::Answered => apply(&key, &op),
            Fate::Refused => OpResult::Failed,
            Fate::Lost => OpResult::Unknown,
            Fate::AppliedUnanswered => {
                apply(&key, &op);
                OpResult::Unknown
            }
            Fate::AppliedLate => {
                late.push((key.clone(), op));
                OpResult::Unknown
            }
        };
        history.complete(id, result.clone());
        workload.observe(&key, &result);
    }
    for (key, op) in late {
        apply(&key, &op);
    }
}

#[test]
fn histories_of_a_linearizable_register_under_faults_are_linearizable() {
    for seed in 1..=4 {
        let history = run(seed);
        let operations = history.operations();
        let unknown = operations
            .iter()
            .filter(|o| o.result == OpResult::Unknown)
            .count();
        let failed = operations.iter().filter(|o| o.result == OpResult::Failed).count();
        assert!(unknown > 0 && failed > 0, "the workload injects faults");
        let report = check(&history);
        assert!(report.is_linearizable(), "seed {seed}: {report}");
        assert_eq!(report.keys.len(), KEYS);
    }
}

#[test]
fn one_read_of_a_value_never_written_is_found() {
    let mut operations = run(11).operations();
    let index = corrupt::read_of_unwritten_value(&mut operations).expect("some read found a value");
    let report = check_operations(&operations, &CheckOptions::default());
    assert!(report.has_violation(), "{report}");
    let bad: Vec<&str> = report.violations().map(|k| k.key.as_str()).collect();
    assert_eq!(bad, [operations[index].key.as_str()], "{report}");
}

#[test]
fn one_stale_read_is_found() {
    let mut operations = run(12).operations();
    let index = corrupt::stale_read(&mut operations).expect("some read follows two writes");
    let report = check_operations(&operations, &CheckOptions::default());
    assert!(report.has_violation(), "{report}");
    let bad: Vec<&str> = report.violations().map(|k| k.key.as_str()).collect();
    assert_eq!(bad, [operations[index].key.as_str()], "{report}");
}
