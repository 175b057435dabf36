//! The final report: the seed's formulas (QPS = N / T, availability = successful / total and
//! uptime / total time), latency percentiles, errors by kind; as text for people and JSON for scripts.

use crate::config::{BenchConfig, KeyDist, ValueFill, WriteMethod};
use crate::tally::Tally;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Why the measured phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Duration,
    /// The --requests cap (or, open loop, the whole schedule) was sent and answered.
    Requests,
    Interrupted,
}

/// What one phase (prefill or measured run) produced.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub tally: Tally,
    /// T: from the phase's start until it stopped.
    pub elapsed: Duration,
    pub stopped_by: StopReason,
    /// Open loop only: requests due before the end that were never sent (the generator or the
    /// connections could not keep up); non-zero means the offered rate was not reached.
    pub unsent: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub mode: &'static str,
    pub connections: usize,
    pub rate: Option<f64>,
    pub write_ratio: f64,
    pub write_method: WriteMethod,
    pub keys: u64,
    pub key_dist: KeyDist,
    pub zipf_s: Option<f64>,
    pub value_size: usize,
    pub value_fill: ValueFill,
    pub seed: u64,
    pub stopped_by: StopReason,
    /// T in QPS = N / T.
    pub elapsed_seconds: f64,
    /// N in QPS = N / T: every finished request, successful or not.
    pub requests: u64,
    pub successful: u64,
    pub failed: u64,
    pub reads: u64,
    pub writes: u64,
    pub reads_not_found: u64,
    pub qps: f64,
    pub latency_us: Option<LatencySummary>,
    /// The same percentiles for reads alone and for writes alone (`null` when none answered).
    pub read_latency_us: Option<LatencySummary>,
    pub write_latency_us: Option<LatencySummary>,
    /// Failures by kind: `connect`, `connect_timeout`, `timeout`, `connection`, `protocol`,
    /// `status_<code>`.
    pub errors: BTreeMap<String, u64>,
    /// The same failures by class: `transport`, `4xx`, `5xx`, `other_status`.
    pub errors_by_class: BTreeMap<&'static str, u64>,
    pub availability: Availability,
    pub unsent: Option<u64>,
    pub prefill: Option<PrefillSummary>,
}

/// Percentiles of request latency in microseconds (from an HDR histogram, 3 significant digits).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencySummary {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The seed's availability, computed both ways it can be read.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Availability {
    /// successful / total requests; `null` when nothing finished.
    pub by_requests: Option<f64>,
    /// uptime / total time, where a second is "up" when at least one request finishing in it
    /// succeeded. A last partial second in which nothing finished is left out of the total.
    pub by_time: Option<f64>,
    pub uptime_seconds: f64,
    pub total_seconds: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PrefillSummary {
    pub requests: u64,
    pub failed: u64,
    pub elapsed_seconds: f64,
    pub completed: bool,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Option<LatencySummary> {
        (!h.is_empty()).then(|| LatencySummary {
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// QPS = N / T (0 when no time passed).
pub fn qps(requests: u64, elapsed: Duration) -> f64 {
    let t = elapsed.as_secs_f64();
    if t > 0.0 { requests as f64 / t } else { 0.0 }
}

impl Availability {
    pub fn of(tally: &Tally, elapsed: Duration) -> Availability {
        let mut total_seconds = elapsed.as_secs_f64();
        // A final partial second in which nothing finished says nothing about the service (the
        // run simply ended in it, abandoning in-flight requests): it is left out of total time.
        let tail = elapsed.as_secs() as usize;
        let tail_empty = tally
            .per_second
            .get(tail)
            .is_none_or(|(ok, failed)| ok + failed == 0);
        if elapsed.subsec_nanos() > 0 && tail_empty {
            total_seconds = elapsed.as_secs() as f64;
        }
        let mut uptime_seconds = 0.0;
        for (second, (successful, _)) in tally.per_second.iter().enumerate() {
            // The last second is partial: it counts only for the part that was measured.
            let length = (total_seconds - second as f64).clamp(0.0, 1.0);
            if *successful > 0 {
                uptime_seconds += length;
            }
        }
        Availability {
            by_requests: (tally.total() > 0).then(|| tally.successful as f64 / tally.total() as f64),
            by_time: (total_seconds > 0.0).then(|| uptime_seconds / total_seconds),
            uptime_seconds,
            total_seconds,
        }
    }
}

impl Report {
    pub fn new(config: &BenchConfig, run: &PhaseResult, prefill: Option<&PhaseResult>) -> Report {
        let tally = &run.tally;
        let mut errors_by_class = BTreeMap::new();
        for (kind, count) in &tally.errors {
            *errors_by_class.entry(kind.class()).or_default() += count;
        }
        Report {
            target: config.target.clone(),
            mode: if config.rate.is_some() {
                "open-loop"
            } else {
                "closed-loop"
            },
            connections: config.connections,
            rate: config.rate,
            write_ratio: config.write_ratio,
            write_method: config.write_method,
            keys: config.keys,
            key_dist: config.key_dist,
            zipf_s: (config.key_dist == KeyDist::Zipf).then_some(config.zipf_s),
            value_size: config.value_size,
            value_fill: config.value_fill,
            seed: config.seed,
            stopped_by: run.stopped_by,
            elapsed_seconds: run.elapsed.as_secs_f64(),
            requests: tally.total(),
            successful: tally.successful,
            failed: tally.failed,
            reads: tally.reads,
            writes: tally.writes,
            reads_not_found: tally.not_found,
            qps: qps(tally.total(), run.elapsed),
            latency_us: LatencySummary::of(&tally.latency_us),
            read_latency_us: LatencySummary::of(&tally.read_latency_us),
            write_latency_us: LatencySummary::of(&tally.write_latency_us),
            errors: tally.errors.iter().map(|(k, v)| (k.label(), *v)).collect(),
            errors_by_class,
            availability: Availability::of(tally, run.elapsed),
            unsent: run.unsent,
            prefill: prefill.map(|p| PrefillSummary {
                requests: p.tally.total(),
                failed: p.tally.failed,
                elapsed_seconds: p.elapsed.as_secs_f64(),
                completed: p.stopped_by == StopReason::Requests,
            }),
        }
    }
}

/// `812µs`, `3.40ms`, `1.250s`.
pub fn format_micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.3}s", us as f64 / 1e6),
    }
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or("n/a".into(), |r| format!("{:.4}%", r * 100.0))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.rate.map(|r| format!(" at {r} req/s")).unwrap_or_default();
        let dist = match self.zipf_s {
            Some(s) => format!("zipf s={s}"),
            None => "uniform".into(),
        };
        writeln!(
            f,
            "hakv bench: {}, {} connections{rate} against {}",
            self.mode, self.connections, self.target
        )?;
        let method = match self.write_method {
            WriteMethod::Post => "POST",
            WriteMethod::Put => "PUT",
        };
        let fill = match self.value_fill {
            ValueFill::Repeat => "one character repeated",
            ValueFill::Random => "random characters",
        };
        writeln!(
            f,
            "  workload      {:.0}% writes ({method}), {} keys {dist}, {}-byte values ({fill}), seed {}",
            self.write_ratio * 100.0,
            self.keys,
            self.value_size,
            self.seed
        )?;
        if let Some(p) = &self.prefill {
            let state = if p.completed { "complete" } else { "INCOMPLETE" };
            writeln!(
                f,
                "  prefill       {} writes ({} failed) in {:.2}s, {state}",
                p.requests, p.failed, p.elapsed_seconds
            )?;
        }
        writeln!(
            f,
            "  requests      {} ({} reads, {} writes; {} ok, {} failed; {} reads not found)",
            self.requests, self.reads, self.writes, self.successful, self.failed, self.reads_not_found
        )?;
        writeln!(
            f,
            "  QPS = N / T   = {} / {:.3}s = {:.1} req/s",
            self.requests, self.elapsed_seconds, self.qps
        )?;
        match &self.latency_us {
            Some(l) => writeln!(
                f,
                "  latency       p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
                format_micros(l.p50),
                format_micros(l.p90),
                format_micros(l.p99),
                format_micros(l.p999),
                format_micros(l.max),
                format_micros(l.mean.round() as u64)
            )?,
            None => writeln!(f, "  latency       no answers")?,
        }
        // Split only when the load mixes both: otherwise the line above says it all.
        if let (Some(r), Some(w)) = (&self.read_latency_us, &self.write_latency_us) {
            writeln!(
                f,
                "  by operation  reads p50 {}  p99 {}; writes p50 {}  p99 {}",
                format_micros(r.p50),
                format_micros(r.p99),
                format_micros(w.p50),
                format_micros(w.p99)
            )?;
        }
        if self.errors.is_empty() {
            writeln!(f, "  errors        none")?;
        } else {
            let kinds: Vec<String> = self.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(f, "  errors        {}", kinds.join(", "))?;
        }
        let a = &self.availability;
        writeln!(
            f,
            "  availability  = successful / total = {} / {} = {}",
            self.successful,
            self.requests,
            percent(a.by_requests)
        )?;
        writeln!(
            f,
            "  availability  = uptime / total time = {:.3}s / {:.3}s = {}",
            a.uptime_seconds,
            a.total_seconds,
            percent(a.by_time)
        )?;
        if let Some(unsent) = self.unsent.filter(|n| *n > 0) {
            writeln!(
                f,
                "  unsent        {unsent} scheduled requests never sent (rate not reached)"
            )?;
        }
        write!(f, "  stopped by    {:?}", self.stopped_by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ErrorKind;
    use crate::tally::Finished;

    fn tally_with(per_second: &[(u64, u64)], latencies_us: &[u64]) -> Tally {
        let mut tally = Tally::new(100);
        for (second, (ok, failed)) in per_second.iter().enumerate() {
            let at = Duration::from_secs(second as u64);
            for _ in 0..*ok {
                tally.record(Finished {
                    is_write: false,
                    result: Ok(200),
                    latency: Duration::from_micros(50),
                    at,
                });
            }
            for _ in 0..*failed {
                tally.record(Finished {
                    is_write: false,
                    result: Err(ErrorKind::Connect),
                    latency: Duration::ZERO,
                    at,
                });
            }
        }
        for us in latencies_us {
            tally.latency_us.record(*us).unwrap();
        }
        tally
    }

    #[test]
    fn qps_is_n_over_t() {
        assert_eq!(qps(1000, Duration::from_secs(4)), 250.0);
        assert_eq!(qps(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn availability_both_formulas() {
        // 4.5 s: seconds 0, 1 and 3 had successes, second 2 only failures, the half second 4 a
        // failure: down.
        let tally = tally_with(&[(10, 0), (5, 5), (0, 10), (10, 0), (0, 1)], &[]);
        let a = Availability::of(&tally, Duration::from_millis(4500));
        assert_eq!(a.by_requests, Some(25.0 / 41.0));
        assert_eq!(a.uptime_seconds, 3.0);
        assert_eq!(a.by_time, Some(3.0 / 4.5));
        // The partial last second counts for its measured part only.
        let b = Availability::of(&tally_with(&[(1, 0), (1, 0)], &[]), Duration::from_millis(1250));
        assert_eq!(b.uptime_seconds, 1.25);
        assert_eq!(b.by_time, Some(1.0));
        // ... and a partial last second where nothing finished is not counted as downtime.
        let c = Availability::of(&tally_with(&[(1, 0), (1, 0)], &[]), Duration::from_millis(2001));
        assert_eq!(
            (c.uptime_seconds, c.total_seconds, c.by_time),
            (2.0, 2.0, Some(1.0))
        );
        // A whole second where nothing finished is downtime (e.g. every request hung).
        let d = Availability::of(
            &tally_with(&[(1, 0), (0, 0), (1, 0)], &[]),
            Duration::from_secs(3),
        );
        assert_eq!(d.by_time, Some(2.0 / 3.0));
        let empty = Availability::of(&Tally::new(1), Duration::ZERO);
        assert_eq!((empty.by_requests, empty.by_time), (None, None));
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        // 1..=1000 µs, once each: p50 = 500, p90 = 900, p99 = 990, p99.9 = 999 (exact below 2048).
        let tally = tally_with(&[], &(1..=1000).collect::<Vec<_>>());
        let l = LatencySummary::of(&tally.latency_us).unwrap();
        assert_eq!(
            (l.min, l.p50, l.p90, l.p99, l.p999, l.max),
            (1, 500, 900, 990, 999, 1000)
        );
        assert!((l.mean - 500.5).abs() < 0.01);
        assert!(LatencySummary::of(&Tally::new(1).latency_us).is_none());
    }

    #[test]
    fn report_json_and_text() {
        let mut tally = tally_with(&[(3, 1)], &[]);
        tally.record(Finished {
            is_write: true,
            result: Ok(503),
            latency: Duration::from_micros(9),
            at: Duration::ZERO,
        });
        let run = PhaseResult {
            tally,
            elapsed: Duration::from_secs(2),
            stopped_by: StopReason::Duration,
            unsent: None,
        };
        let report = Report::new(&BenchConfig::default(), &run, None);
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["requests"], 5);
        assert_eq!(json["qps"], 2.5);
        assert_eq!(json["errors"]["connect"], 1);
        assert_eq!(json["errors"]["status_503"], 1);
        assert_eq!(json["errors_by_class"]["transport"], 1);
        assert_eq!(json["errors_by_class"]["5xx"], 1);
        assert_eq!(json["availability"]["by_requests"], 0.6);
        assert_eq!(json["mode"], "closed-loop");
        assert_eq!(json["stopped_by"], "duration");
        let text = report.to_string();
        assert!(text.contains("QPS = N / T   = 5 / 2.000s = 2.5 req/s"), "{text}");
        assert!(
            text.contains("availability  = successful / total = 3 / 5 = 60.0000%"),
            "{text}"
        );
        assert!(text.contains("connect 1, status_503 1"), "{text}");
        // Reads (three at 50 µs) and the write (9 µs) are also summed up apart.
        assert_eq!(json["read_latency_us"]["p99"], 50);
        assert_eq!(json["write_latency_us"]["p99"], 9);
        assert!(
            text.contains("by operation  reads p50 50µs  p99 50µs; writes p50 9µs  p99 9µs"),
            "{text}"
        );
    }

    #[test]
    fn micros_formatting() {
        assert_eq!(format_micros(812), "812µs");
        assert_eq!(format_micros(3_400), "3.40ms");
        assert_eq!(format_micros(1_250_000), "1.250s");
    }
}
