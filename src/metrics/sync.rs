//! The daily sync: date runs, their executions and verifications.

use prometheus::{Histogram, IntCounter, IntGauge};

use super::family::{Counters, GaugeGuard, Gauges, Registrar};
use crate::labels::{ObjectState, SyncResult, VerifyResult};

#[derive(Clone)]
pub struct SyncMetrics {
    runs: Counters<SyncResult>,
    last_success: IntGauge,
    duration: Histogram,
    files_transferred: IntCounter,
    bytes_transferred: IntCounter,
    filter_patterns: IntGauge,
    executions_in_progress: IntGauge,
    verifications: Counters<VerifyResult>,
    verify_objects: Gauges<ObjectState>,
    verify_expected: IntGauge,
}

impl SyncMetrics {
    pub(crate) fn register(r: &mut Registrar) -> Result<Self, prometheus::Error> {
        Ok(SyncMetrics {
            runs: r.counters("sync_runs_total", "Sync date runs by result.", "result")?,
            last_success: r.gauge(
                "sync_last_success_timestamp_seconds",
                "Unix time of the last sync date run that ended in SUCCESS.",
            )?,
            duration: r.histogram(
                "sync_duration_seconds",
                "Wall time of one sync date run, from filter computation to final status.",
                &[
                    10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
                ],
            )?,
            files_transferred: r.counter(
                "sync_files_transferred_total",
                "Files DataSync reported as transferred.",
            )?,
            bytes_transferred: r.counter(
                "sync_bytes_transferred_total",
                "Bytes DataSync reported as transferred.",
            )?,
            filter_patterns: r.gauge(
                "sync_filter_patterns",
                "Patterns in the include filters of the date being synced (or last synced).",
            )?,
            executions_in_progress: r.gauge(
                "sync_executions_in_progress",
                "DataSync executions this process is currently watching.",
            )?,
            verifications: r.counters(
                "sync_verifications_total",
                "Verifications of a date's partitions after its executions, by result.",
                "result",
            )?,
            verify_objects: r.gauges(
                "sync_verify_objects",
                "Objects of the last verified date's partitions, by state (each object in one).",
                "state",
            )?,
            verify_expected: r.gauge(
                "sync_verify_expected_objects",
                "Source objects the last verified date's partitions were due to receive.",
            )?,
        })
    }

    /// A date run ended after `seconds`, with `result` (none: it was not this run's to
    /// count). A skipped run took no time worth a sample.
    pub(crate) fn date_ended(&self, result: Option<SyncResult>, seconds: f64) {
        if let Some(r) = result {
            self.runs.inc(r);
        }
        if result != Some(SyncResult::Skipped) {
            self.duration.observe(seconds.max(0.0));
        }
    }

    /// Raises the last-success gauge to `unix_seconds` (never lowers it).
    pub(crate) fn succeeded_at(&self, unix_seconds: i64) {
        let g = &self.last_success;
        g.set(g.get().max(unix_seconds));
    }

    pub(crate) fn filter_built(&self, patterns: usize) {
        self.filter_patterns.set(patterns as i64);
    }

    pub(crate) fn execution_transferred(&self, files: i64, bytes: i64) {
        self.files_transferred.inc_by(files.max(0) as u64);
        self.bytes_transferred.inc_by(bytes.max(0) as u64);
    }

    /// A verification whose listings failed: its counts are unknown, the last ones stay.
    pub(crate) fn verification_failed(&self) {
        self.verifications.inc(VerifyResult::Failed);
    }

    /// Records one verification that listed everything, and the objects it found.
    pub(crate) fn verified(
        &self,
        result: VerifyResult,
        expected: u64,
        objects: &[(ObjectState, u64)],
    ) {
        self.verifications.inc(result);
        self.verify_expected.set(expected as i64);
        for (state, n) in objects {
            self.verify_objects.set(*state, *n as i64);
        }
    }

    /// Counts one execution being watched until the guard is dropped.
    pub(crate) fn execution_watched(&self) -> GaugeGuard {
        GaugeGuard::new(&self.executions_in_progress, 1)
    }

    pub fn runs(&self, result: SyncResult) -> u64 {
        self.runs.get(result)
    }

    pub fn last_success(&self) -> i64 {
        self.last_success.get()
    }

    pub fn filter_patterns(&self) -> i64 {
        self.filter_patterns.get()
    }

    pub fn files_transferred(&self) -> u64 {
        self.files_transferred.get()
    }

    pub fn bytes_transferred(&self) -> u64 {
        self.bytes_transferred.get()
    }

    pub fn verifications(&self, result: VerifyResult) -> u64 {
        self.verifications.get(result)
    }

    pub fn verify_objects(&self, state: ObjectState) -> i64 {
        self.verify_objects.get(state)
    }

    pub fn verify_expected_objects(&self) -> i64 {
        self.verify_expected.get()
    }

    pub fn executions_in_progress(&self) -> i64 {
        self.executions_in_progress.get()
    }
}
