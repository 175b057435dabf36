//! How late the runtime runs a task that is due: a probe sleeps a short period, again and
//! again, and records how much later than due it woke (`hakv_runtime_wake_delay_seconds`).
//!
//! Why: a request's own duration is timed from when its handler starts. When a worker is
//! blocked (a synchronous call on the runtime) or the process gets no CPU, requests wait
//! before any handler runs and their time shows nowhere on the server; this probe waits in the
//! same queues, so such stalls show here.

use metrics::histogram;
use std::time::{Duration, Instant};

/// Short enough to catch stalls of tens of milliseconds, long enough to cost nothing.
const PERIOD: Duration = Duration::from_millis(10);

/// Runs the probe until the runtime stops.
pub async fn probe_loop() {
    let delays = histogram!("hakv_runtime_wake_delay_seconds");
    loop {
        let slept_from = Instant::now();
        tokio::time::sleep(PERIOD).await;
        delays.record(late_by(slept_from.elapsed()).as_secs_f64());
    }
}

/// How much of `slept` was beyond the period asked for.
fn late_by(slept: Duration) -> Duration {
    slept.saturating_sub(PERIOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_what_the_sleep_took_beyond_its_period() {
        assert_eq!(
            late_by(PERIOD + Duration::from_millis(70)),
            Duration::from_millis(70)
        );
        assert_eq!(late_by(PERIOD / 2), Duration::ZERO);
    }
}
