//! Larger, highly concurrent histories from a simulation in logical time (each client's
//! requests overlap with everyone else's), to show the search stays within its step budget
//! at fault-test sizes and still finds one bad answer. Deterministic: seeded, no threads.

mod support;

use hakv_testkit::{CheckOptions, History, Op, OpResult, check, check_operations};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::corrupt;
use support::register::Register;
use support::workload::{Fate, Workload};

struct InFlight {
    key: String,
    op: Op,
    fate: Fate,
    invoke: u64,
    /// Set at the request's linearization point.
    result: Option<OpResult>,
}

/// `clients` clients each make `ops_per_client` requests; at every tick a random client
/// sends its next request, has its request take effect, or receives its answer.
fn simulate(seed: u64, clients: u64, ops_per_client: usize, keys: usize) -> History {
    let history = History::new();
    let mut register = Register::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut workloads: Vec<Workload> = (0..clients).map(|c| Workload::new(seed, c, keys)).collect();
    let mut in_flight: Vec<Option<InFlight>> = (0..clients).map(|_| None).collect();
    let mut remaining = vec![ops_per_client; clients as usize];
    let mut late: Vec<(String, Op)> = Vec::new();
    let mut now = 0u64;
    while remaining.iter().any(|&r| r > 0) || in_flight.iter().any(Option::is_some) {
        now += 1;
        if !late.is_empty() && rng.random_bool(0.02) {
            let (key, op) = late.swap_remove(rng.random_range(0..late.len()));
            register.apply(&key, &op);
        }
        let client = rng.random_range(0..clients as usize);
        let workload = &mut workloads[client];
        match in_flight[client].take() {
            None if remaining[client] > 0 => {
                remaining[client] -= 1;
                let (key, op) = workload.next_op();
                let fate = workload.fate();
                in_flight[client] = Some(InFlight {
                    key,
                    op,
                    fate,
                    invoke: now,
                    result: None,
                });
            }
            None => {}
            Some(mut request) if request.result.is_none() => {
                request.result = Some(match request.fate {
                    Fate::Answered => register.apply(&request.key, &request.op),
                    Fate::Refused => OpResult::Failed,
                    Fate::Lost => OpResult::Unknown,
                    Fate::AppliedUnanswered => {
                        register.apply(&request.key, &request.op);
                        OpResult::Unknown
                    }
                    Fate::AppliedLate => {
                        late.push((request.key.clone(), request.op.clone()));
                        OpResult::Unknown
                    }
                });
                in_flight[client] = Some(request);
            }
            Some(request) => {
                let result = request.result.expect("took effect");
                workload.observe(&request.key, &result);
                history.record(
                    client as u64,
                    request.key,
                    request.op,
                    request.invoke,
                    now,
                    result,
                );
            }
        }
    }
    history
}

fn max_steps(report: &hakv_testkit::CheckReport) -> u64 {
    report.keys.iter().map(|k| k.steps).max().unwrap_or(0)
}

#[test]
fn eight_clients_of_200_requests_on_5_keys_are_checked_within_the_budget() {
    let history = simulate(7, 8, 200, 5);
    assert_eq!(history.len(), 1600);
    let report = check(&history);
    println!("{report}max steps per key: {}", max_steps(&report));
    assert!(report.is_linearizable(), "{report}");
}

#[test]
fn eight_clients_of_40_requests_on_one_key_are_checked_within_the_budget() {
    // Every request contends on one key: the hardest shape per operation. (1600 requests on
    // one key with this many unknown outcomes exceed the default budget, see the crate docs.)
    let history = simulate(8, 8, 40, 1);
    let report = check(&history);
    println!("{report}max steps per key: {}", max_steps(&report));
    assert!(report.is_linearizable(), "{report}");
}

#[test]
fn one_bad_answer_among_1600_is_found() {
    let operations = simulate(9, 8, 200, 5).operations();
    let mut unwritten = operations.clone();
    let index = corrupt::read_of_unwritten_value(&mut unwritten).expect("some read found a value");
    let report = check_operations(&unwritten, &CheckOptions::default());
    assert!(report.has_violation(), "{report}");
    assert_eq!(report.violations().count(), 1);
    assert_eq!(report.violations().next().unwrap().key, unwritten[index].key);

    let mut stale = operations;
    corrupt::stale_read(&mut stale).expect("some read follows two writes");
    let report = check_operations(&stale, &CheckOptions::default());
    assert!(report.has_violation(), "{report}");
}
