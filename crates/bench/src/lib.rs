//! The load generator behind `hakv bench`: closed- and open-loop HTTP load against a hakv (or
//! seed-compatible) endpoint, reporting QPS, HDR latency percentiles, errors and availability.

mod config;
mod connection;
mod error;
mod report;
mod runner;
mod tally;
mod target;
mod workload;
mod zipf;

pub use config::{BenchConfig, KeyDist, ValueFill, WriteMethod, parse_duration};
pub use connection::ErrorKind;
pub use error::BenchError;
pub use report::{Availability, LatencySummary, PrefillSummary, Report, StopReason};
pub use runner::Progress;
pub use workload::key_name;
pub use zipf::Zipf;

use runner::{Phase, Schedule, run_phase};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use target::Target;
use workload::Workload;

/// Longest a prefill may take; it normally ends when every key is written.
const PREFILL_LIMIT: Duration = Duration::from_secs(600);

/// Runs the benchmark described by `config` on the current tokio runtime: the optional prefill,
/// then the measured phase. `stop` resolving (e.g. Ctrl-C) ends the run early; the report still
/// covers what was measured. `progress` is called about once per second.
pub async fn run<F: Future<Output = ()>>(
    config: &BenchConfig,
    stop: F,
    mut progress: impl FnMut(&Progress),
) -> Result<Report, BenchError> {
    config.validate().map_err(BenchError::InvalidConfig)?;
    let target = Arc::new(Target::resolve(config).await?);
    tokio::pin!(stop);
    let phase = |name, schedule, limit| Phase {
        name,
        schedule,
        target: target.clone(),
        connections: config.connections,
        timeout: config.timeout,
        seed: config.seed,
        limit,
    };

    let prefill = if config.prefill {
        let schedule = Schedule::Prefill { keys: config.keys };
        let result = run_phase(
            phase("prefill", schedule, PREFILL_LIMIT),
            stop.as_mut(),
            &mut progress,
        )
        .await;
        if result.stopped_by == StopReason::Interrupted {
            // `stop` has fired and must not be polled again: report the prefill alone.
            let empty = runner::empty_result(StopReason::Interrupted);
            return Ok(Report::new(config, &empty, Some(&result)));
        }
        Some(result)
    } else {
        None
    };

    let workload = Workload::new(config);
    // Open loop: the schedule holds every request due within --duration, so running out of it
    // means the duration ended unless --requests was the smaller bound.
    let mut schedule_is_duration = false;
    let schedule = match config.rate {
        Some(rate) => {
            let due = (config.duration.as_secs_f64() * rate).ceil() as u64;
            schedule_is_duration = config.requests.is_none_or(|cap| cap >= due);
            Schedule::Open {
                rate,
                slots: config.requests.map_or(due, |cap| cap.min(due)),
                workload,
            }
        }
        None => Schedule::Closed {
            cap: config.requests,
            workload,
        },
    };
    let mut result = run_phase(
        phase("run", schedule, config.duration),
        stop.as_mut(),
        &mut progress,
    )
    .await;
    if schedule_is_duration && result.stopped_by == StopReason::Requests {
        result.stopped_by = StopReason::Duration;
    }
    Ok(Report::new(config, &result, prefill.as_ref()))
}
