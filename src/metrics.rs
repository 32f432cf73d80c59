//! Prometheus metrics. Every family is prefixed `s3_reconciler_` by the registry; values are in
//! base units; labels come from the enums in [`crate::labels`], and every series of a labelled
//! family is registered up front so dashboards see zeros rather than gaps.
//!
//! Record through the methods: they take typed labels. The fields are public for reading
//! (tests, benchmarks).

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::labels::{
    CheckId, CheckStatus, DataSyncOp, EntryKind, ErrorKind, KeptReason, ListingMethod,
    MessageResult, ObjectState, PurgeOutcome, S3Op, Service, Side, SqsOp, SweepResult, SyncResult,
    Task, VerifyResult,
};

/// All metrics of the daemon, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub build_info: IntGauge,
    pub sync_runs: IntCounterVec,
    pub sync_last_success: IntGauge,
    pub sync_duration: Histogram,
    pub sync_files_transferred: IntCounter,
    pub sync_bytes_transferred: IntCounter,
    pub sync_filter_patterns: IntGauge,
    pub sync_executions_in_progress: IntGauge,
    pub sync_verifications: IntCounterVec,
    pub sync_verify_objects: IntGaugeVec,
    pub purge_events: IntCounterVec,
    pub purge_deleted: IntCounterVec,
    pub purge_listings: IntCounterVec,
    pub purge_lag: Histogram,
    pub purge_messages: IntCounterVec,
    pub purge_in_flight: IntGauge,
    pub purge_dlq_configured: IntGauge,
    pub sweep_scanned: IntCounterVec,
    pub sweep_orphans: IntCounter,
    pub sweep_purged: IntCounter,
    pub sweep_would_purge: IntCounter,
    pub sweep_kept: IntCounterVec,
    pub sweep_runs: IntCounterVec,
    pub sweep_last_success: IntGauge,
    pub sweep_last_orphans: IntGauge,
    pub preflight_checks: IntGaugeVec,
    pub preflight_last_run: IntGauge,
    pub s3_requests: IntCounterVec,
    pub sqs_requests: IntCounterVec,
    pub datasync_requests: IntCounterVec,
    pub aws_errors: IntCounterVec,
    pub task_ready: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: T,
) -> Result<T, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Registers every series of a labelled counter, so it reads 0 before its first event.
fn preregister<L: Copy>(v: &IntCounterVec, all: &[L], label: fn(L) -> &'static str) {
    for l in all {
        v.with_label_values(&[label(*l)]);
    }
}

impl Metrics {
    /// Builds and registers every metric. Fails only on an invalid or duplicate name.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("s3_reconciler".into()), None)?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build_info = reg(
            &registry,
            IntGauge::with_opts(
                Opts::new("build_info", "Build information; always 1.")
                    .const_label("version", env!("CARGO_PKG_VERSION")),
            )?,
        )?;
        build_info.set(1);
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels)?,
            )
        };
        let gauge = |name: &str, help: &str| reg(&registry, IntGauge::new(name, help)?);
        let counter = |name: &str, help: &str| reg(&registry, IntCounter::new(name, help)?);
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            reg(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?,
            )
        };
        let m = Metrics {
            build_info,
            sync_runs: counter_vec("sync_runs_total", "Sync date runs by result.", &["result"])?,
            sync_last_success: gauge(
                "sync_last_success_timestamp_seconds",
                "Unix time of the last sync date run that ended in SUCCESS.",
            )?,
            sync_duration: histogram(
                "sync_duration_seconds",
                "Wall time of one sync date run, from filter computation to final status.",
                vec![
                    10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
                ],
            )?,
            sync_files_transferred: counter(
                "sync_files_transferred_total",
                "Files DataSync reported as transferred.",
            )?,
            sync_bytes_transferred: counter(
                "sync_bytes_transferred_total",
                "Bytes DataSync reported as transferred.",
            )?,
            sync_filter_patterns: gauge(
                "sync_filter_patterns",
                "Patterns in the include filters of the date being synced (or last synced).",
            )?,
            sync_executions_in_progress: gauge(
                "sync_executions_in_progress",
                "DataSync executions this process is currently watching.",
            )?,
            sync_verifications: counter_vec(
                "sync_verifications_total",
                "Verifications of a date's partitions after its executions, by result.",
                &["result"],
            )?,
            sync_verify_objects: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "sync_verify_objects",
                        "Objects of the last verified date's partitions, by state.",
                    ),
                    &["state"],
                )?,
            )?,
            purge_events: counter_vec(
                "purge_events_total",
                "Event records handled by the purge consumer, by outcome.",
                &["outcome"],
            )?,
            purge_deleted: counter_vec(
                "purge_target_entries_deleted_total",
                "Target entries deleted, by kind (version or delete_marker).",
                &["kind"],
            )?,
            purge_listings: counter_vec(
                "purge_listings_total",
                "Listings made to decide purges, one per side: per_key, range (keys asked for together), range_given_up (a sparse range, its keys then listed per key).",
                &["method"],
            )?,
            purge_lag: histogram(
                "purge_lag_seconds",
                "Time from the event's eventTime to the purge being done.",
                vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
                    900.0, 3600.0,
                ],
            )?,
            purge_messages: counter_vec(
                "purge_messages_total",
                "SQS messages by result (deleted or failed).",
                &["result"],
            )?,
            purge_in_flight: gauge(
                "purge_messages_in_flight",
                "SQS messages being processed now.",
            )?,
            purge_dlq_configured: gauge(
                "purge_dlq_configured",
                "1 when the purge queue has a redrive policy (a dead-letter queue), else 0.",
            )?,
            sweep_scanned: counter_vec(
                "sweep_keys_scanned_total",
                "Keys the sweep walked past, by side.",
                &["side"],
            )?,
            sweep_orphans: counter(
                "sweep_orphans_total",
                "Target keys the sweep found orphaned (old enough to decide).",
            )?,
            sweep_purged: counter("sweep_purged_keys_total", "Orphaned keys the sweep purged.")?,
            sweep_would_purge: counter(
                "sweep_would_purge_keys_total",
                "Orphaned keys a report or dry-run sweep would have purged.",
            )?,
            sweep_kept: counter_vec(
                "sweep_kept_keys_total",
                "Orphaned keys the sweep left, by reason.",
                &["reason"],
            )?,
            sweep_runs: counter_vec("sweep_runs_total", "Sweep runs by result.", &["result"])?,
            sweep_last_success: gauge(
                "sweep_last_success_timestamp_seconds",
                "Unix time the last sweep run completed within its guardrails.",
            )?,
            sweep_last_orphans: gauge(
                "sweep_last_orphans",
                "Orphans found by the last completed sweep run.",
            )?,
            preflight_checks: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "preflight_check",
                        "1 for the status each preflight check last had (pass, warn, fail), else 0.",
                    ),
                    &["check", "status"],
                )?,
            )?,
            preflight_last_run: gauge(
                "preflight_last_run_timestamp_seconds",
                "Unix time the preflight checks last ran.",
            )?,
            s3_requests: counter_vec(
                "s3_requests_total",
                "S3 API calls made, by operation (SDK retries of one call count once).",
                &["operation"],
            )?,
            sqs_requests: counter_vec(
                "sqs_requests_total",
                "SQS API calls made, by operation (SDK retries of one call count once).",
                &["operation"],
            )?,
            datasync_requests: counter_vec(
                "datasync_requests_total",
                "DataSync API calls made, by operation (SDK retries of one call count once).",
                &["operation"],
            )?,
            aws_errors: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "aws_errors_total",
                        "AWS calls that failed after the SDK's retries, by service and kind.",
                    ),
                    &["service", "kind"],
                )?,
            )?,
            task_ready: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "task_ready",
                        "1 when the task is ready, else 0; absent when the task is disabled.",
                    ),
                    &["task"],
                )?,
            )?,
            registry,
        };
        preregister(&m.purge_events, PurgeOutcome::ALL, PurgeOutcome::label);
        preregister(&m.sync_runs, SyncResult::ALL, SyncResult::label);
        preregister(&m.purge_deleted, EntryKind::ALL, EntryKind::label);
        preregister(&m.purge_listings, ListingMethod::ALL, ListingMethod::label);
        preregister(&m.purge_messages, MessageResult::ALL, MessageResult::label);
        preregister(&m.datasync_requests, DataSyncOp::ALL, DataSyncOp::label);
        preregister(
            &m.sync_verifications,
            VerifyResult::ALL,
            VerifyResult::label,
        );
        for s in ObjectState::ALL {
            m.sync_verify_objects.with_label_values(&[s.label()]);
        }
        for s in Service::ALL {
            for k in ErrorKind::ALL {
                m.aws_errors.with_label_values(&[s.label(), k.label()]);
            }
        }
        Ok(m)
    }

    /// The registry in Prometheus text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            return format!("# encode error: {e}\n");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    pub(crate) fn s3_request(&self, op: S3Op) {
        self.s3_requests.with_label_values(&[op.label()]).inc();
    }

    pub(crate) fn datasync_request(&self, op: DataSyncOp) {
        self.datasync_requests
            .with_label_values(&[op.label()])
            .inc();
    }

    pub(crate) fn sqs_request(&self, op: SqsOp) {
        self.sqs_requests.with_label_values(&[op.label()]).inc();
    }

    pub(crate) fn aws_error(&self, service: Service, kind: ErrorKind) {
        self.aws_errors
            .with_label_values(&[service.label(), kind.label()])
            .inc();
    }

    pub(crate) fn purge_event(&self, outcome: PurgeOutcome) {
        self.purge_events
            .with_label_values(&[outcome.label()])
            .inc();
    }

    pub(crate) fn purge_listing(&self, method: ListingMethod) {
        self.purge_listings
            .with_label_values(&[method.label()])
            .inc();
    }

    pub fn purge_deleted(&self, kind: EntryKind) {
        self.purge_deleted.with_label_values(&[kind.label()]).inc();
    }

    pub(crate) fn purge_message(&self, result: MessageResult, n: usize) {
        self.purge_messages
            .with_label_values(&[result.label()])
            .inc_by(n as u64);
    }

    pub(crate) fn purge_lag(&self, seconds: f64) {
        self.purge_lag.observe(seconds.max(0.0));
    }

    pub(crate) fn dlq_configured(&self, configured: bool) {
        self.purge_dlq_configured.set(i64::from(configured));
    }

    /// Counts `n` messages in flight until the guard is dropped.
    pub(crate) fn messages_in_flight(&self, n: usize) -> GaugeGuard {
        GaugeGuard::new(&self.purge_in_flight, n as i64)
    }

    pub(crate) fn sync_run(&self, result: SyncResult) {
        self.sync_runs.with_label_values(&[result.label()]).inc();
    }

    /// Raises the last-success gauge to `unix_seconds` (never lowers it).
    pub(crate) fn sync_succeeded_at(&self, unix_seconds: i64) {
        let g = &self.sync_last_success;
        g.set(g.get().max(unix_seconds));
    }

    pub(crate) fn sync_transferred(&self, files: i64, bytes: i64) {
        self.sync_files_transferred.inc_by(files.max(0) as u64);
        self.sync_bytes_transferred.inc_by(bytes.max(0) as u64);
    }

    /// Records one verification and, when it listed everything, the objects it found.
    pub(crate) fn sync_verified(&self, result: VerifyResult, objects: &[(ObjectState, u64)]) {
        self.sync_verifications
            .with_label_values(&[result.label()])
            .inc();
        for (state, n) in objects {
            self.sync_verify_objects
                .with_label_values(&[state.label()])
                .set(*n as i64);
        }
    }

    /// Records a check's status, one-hot over the statuses.
    pub(crate) fn preflight_check(&self, check: CheckId, status: CheckStatus) {
        for s in CheckStatus::ALL {
            self.preflight_checks
                .with_label_values(&[check.label(), s.label()])
                .set(i64::from(*s == status));
        }
    }

    pub(crate) fn preflight_ran(&self, unix_seconds: i64) {
        self.preflight_last_run.set(unix_seconds);
    }

    pub(crate) fn sweep_scanned(&self, side: Side) {
        self.sweep_scanned.with_label_values(&[side.label()]).inc();
    }

    pub(crate) fn sweep_orphan(&self) {
        self.sweep_orphans.inc();
    }

    /// One orphan settled: purged (wholly or partly), would have been, or kept for `reason`.
    pub(crate) fn sweep_settled(
        &self,
        purged: bool,
        would_purge: bool,
        reason: Option<KeptReason>,
    ) {
        if purged {
            self.sweep_purged.inc();
        }
        if would_purge {
            self.sweep_would_purge.inc();
        }
        if let Some(r) = reason {
            self.sweep_kept.with_label_values(&[r.label()]).inc();
        }
    }

    pub(crate) fn sweep_run(&self, result: SweepResult) {
        self.sweep_runs.with_label_values(&[result.label()]).inc();
    }

    /// A run completed within its guardrails at `unix_seconds`, having found `orphans`.
    pub(crate) fn sweep_completed(&self, unix_seconds: i64, orphans: u64) {
        let g = &self.sweep_last_success;
        g.set(g.get().max(unix_seconds));
        self.sweep_last_orphans.set(orphans as i64);
    }

    /// Counts one execution being watched until the guard is dropped.
    pub(crate) fn execution_watched(&self) -> GaugeGuard {
        GaugeGuard::new(&self.sync_executions_in_progress, 1)
    }

    pub(crate) fn task_ready(&self, task: Task, ready: bool) {
        self.task_ready
            .with_label_values(&[task.label()])
            .set(i64::from(ready));
    }
}

/// Adds to a gauge on creation and takes it back on drop, so an early return or a panic
/// cannot leave the gauge drifting.
pub(crate) struct GaugeGuard {
    gauge: IntGauge,
    n: i64,
}

impl GaugeGuard {
    fn new(gauge: &IntGauge, n: i64) -> Self {
        gauge.add(n);
        GaugeGuard {
            gauge: gauge.clone(),
            n,
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.gauge.sub(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_prefixed_and_preregistered() {
        let m = Metrics::new().unwrap();
        let text = m.render();
        assert!(
            text.contains("s3_reconciler_build_info{version=\""),
            "{text}"
        );
        for o in PurgeOutcome::ALL {
            assert!(
                text.contains(&format!(
                    "s3_reconciler_purge_events_total{{outcome=\"{o}\"}} 0"
                )),
                "{o}"
            );
        }
        for r in SyncResult::ALL {
            assert!(text.contains(&format!(
                "s3_reconciler_sync_runs_total{{result=\"{r}\"}} 0"
            )));
        }
        assert!(
            text.contains("s3_reconciler_aws_errors_total{kind=\"throttling\",service=\"s3\"} 0")
        );
        #[cfg(target_os = "linux")]
        assert!(text.contains("s3_reconciler_process_resident_memory_bytes"));
    }

    #[test]
    fn gauge_guards_cannot_drift() {
        let m = Metrics::new().unwrap();
        {
            let _g = m.messages_in_flight(5);
            assert_eq!(m.purge_in_flight.get(), 5);
            let _w = m.execution_watched();
            assert_eq!(m.sync_executions_in_progress.get(), 1);
        }
        assert_eq!(m.purge_in_flight.get(), 0);
        assert_eq!(m.sync_executions_in_progress.get(), 0);
        m.sync_succeeded_at(100);
        m.sync_succeeded_at(50);
        assert_eq!(m.sync_last_success.get(), 100);
    }
}
