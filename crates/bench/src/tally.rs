//! Counts and latencies of finished requests, kept per shard of connections and merged at the end.

use crate::connection::ErrorKind;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies are recorded in microseconds up to this bound (longer ones saturate to it);
/// 3 significant digits keep the histogram near 150 KiB.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What one shard of connections saw.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of every request that got an HTTP answer, whatever its status.
    pub latency_us: Histogram<u64>,
    /// The same, reads only and writes only: a mixed load's p99 sits on the border between
    /// the two (at 10 % writes it is the writes' p90), so a slower disk and a busier CPU look
    /// alike until they are told apart.
    pub read_latency_us: Histogram<u64>,
    pub write_latency_us: Histogram<u64>,
    /// 2xx answers, plus 404 answers to reads (a correct "no such key").
    pub successful: u64,
    pub failed: u64,
    /// Reads answered 404 (counted in `successful`).
    pub not_found: u64,
    pub reads: u64,
    pub writes: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// `(successful, failed)` per whole second since the phase began, for the uptime formula.
    pub per_second: Vec<(u64, u64)>,
    max_seconds: usize,
}

/// How one request ended, as far as the report cares.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub is_write: bool,
    pub result: Result<u16, ErrorKind>,
    pub latency: Duration,
    /// When it finished, measured from the start of the phase.
    pub at: Duration,
}

impl Tally {
    /// `max_seconds` bounds the per-second table (later seconds fold into the last slot).
    pub fn new(max_seconds: usize) -> Tally {
        let histogram =
            || Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid");
        Tally {
            latency_us: histogram(),
            read_latency_us: histogram(),
            write_latency_us: histogram(),
            successful: 0,
            failed: 0,
            not_found: 0,
            reads: 0,
            writes: 0,
            errors: BTreeMap::new(),
            per_second: Vec::new(),
            max_seconds: max_seconds.max(1),
        }
    }

    /// The same tally with every page of its histograms written once, so that recording into
    /// it during a run never waits for the kernel to supply a page.
    pub fn touched(mut self) -> Tally {
        for histogram in [
            &mut self.latency_us,
            &mut self.read_latency_us,
            &mut self.write_latency_us,
        ] {
            histogram.reset(); // writes every counter
        }
        self
    }

    pub fn total(&self) -> u64 {
        self.successful + self.failed
    }

    pub fn record(&mut self, finished: Finished) {
        if finished.is_write {
            self.writes += 1;
        } else {
            self.reads += 1;
        }
        let outcome = match finished.result {
            Ok(status) => {
                let micros = (finished.latency.as_micros().min(u64::MAX as u128) as u64).max(1);
                self.latency_us.saturating_record(micros);
                if finished.is_write {
                    self.write_latency_us.saturating_record(micros);
                } else {
                    self.read_latency_us.saturating_record(micros);
                }
                match status {
                    200..=299 => Ok(()),
                    404 if !finished.is_write => {
                        self.not_found += 1;
                        Ok(())
                    }
                    code => Err(ErrorKind::Status(code)),
                }
            }
            Err(kind) => Err(kind),
        };
        let second = (finished.at.as_secs() as usize).min(self.max_seconds - 1);
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, (0, 0));
        }
        match outcome {
            Ok(()) => {
                self.successful += 1;
                self.per_second[second].0 += 1;
            }
            Err(kind) => {
                self.failed += 1;
                *self.errors.entry(kind).or_default() += 1;
                self.per_second[second].1 += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.read_latency_us.add(&other.read_latency_us);
        let _ = self.write_latency_us.add(&other.write_latency_us);
        self.successful += other.successful;
        self.failed += other.failed;
        self.not_found += other.not_found;
        self.reads += other.reads;
        self.writes += other.writes;
        for (kind, count) in &other.errors {
            *self.errors.entry(*kind).or_default() += count;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), (0, 0));
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(is_write: bool, result: Result<u16, ErrorKind>, micros: u64, second: u64) -> Finished {
        Finished {
            is_write,
            result,
            latency: Duration::from_micros(micros),
            at: Duration::from_secs(second),
        }
    }

    #[test]
    fn a_touched_tally_is_empty_and_records_as_a_new_one() {
        let mut tally = Tally::new(10).touched();
        assert_eq!((tally.total(), tally.latency_us.len()), (0, 0));
        tally.record(done(true, Ok(201), 250, 0));
        assert_eq!(tally.write_latency_us.len(), 1);
        assert_eq!(tally.latency_us.max(), tally.latency_us.highest_equivalent(250));
    }

    #[test]
    fn classifies_outcomes() {
        let mut tally = Tally::new(10);
        tally.record(done(false, Ok(200), 100, 0));
        tally.record(done(false, Ok(404), 100, 0)); // a read of a missing key is an answer
        tally.record(done(true, Ok(404), 100, 1)); // a write must not 404
        tally.record(done(true, Ok(201), 100, 1));
        tally.record(done(true, Ok(503), 100, 2));
        tally.record(done(false, Err(ErrorKind::Connect), 0, 2));
        assert_eq!((tally.successful, tally.failed, tally.not_found), (3, 3, 1));
        assert_eq!((tally.reads, tally.writes), (3, 3));
        assert_eq!(tally.errors[&ErrorKind::Status(503)], 1);
        assert_eq!(tally.errors[&ErrorKind::Status(404)], 1);
        assert_eq!(tally.errors[&ErrorKind::Connect], 1);
        assert_eq!(tally.per_second, vec![(2, 0), (1, 1), (0, 2)]);
        // Only answered requests have a latency.
        assert_eq!(tally.latency_us.len(), 5);
        assert_eq!(tally.read_latency_us.len(), 2);
        assert_eq!(tally.write_latency_us.len(), 3);
    }

    #[test]
    fn merge_adds_everything_and_per_second_is_bounded() {
        let mut a = Tally::new(2);
        a.record(done(false, Ok(200), 10, 0));
        let mut b = Tally::new(2);
        b.record(done(false, Ok(200), 1000, 5)); // beyond the table: folds into the last second
        b.record(done(false, Err(ErrorKind::Timeout), 0, 1));
        a.merge(&b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.per_second, vec![(1, 0), (1, 1)]);
        assert_eq!(a.latency_us.max(), b.latency_us.max());
        assert_eq!(a.errors[&ErrorKind::Timeout], 1);
    }

    #[test]
    fn error_labels_and_classes() {
        assert_eq!(ErrorKind::Status(503).label(), "status_503");
        assert_eq!(ErrorKind::Status(503).class(), "5xx");
        assert_eq!(ErrorKind::Status(412).class(), "4xx");
        assert_eq!(ErrorKind::Status(302).class(), "other_status");
        assert_eq!(ErrorKind::ConnectTimeout.class(), "transport");
    }
}
