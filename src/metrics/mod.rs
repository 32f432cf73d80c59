//! Prometheus metrics. Every family of the daemon is prefixed `s3_reconciler_` by its registry;
//! the standard `process_*` families are not (a second registry), as every process dashboard
//! expects. Values are in base units; labels come from the enums in [`crate::labels`].
//!
//! One group per capability ([`SyncMetrics`], [`PurgeMetrics`], [`SweepMetrics`],
//! [`PreflightMetrics`], [`AwsMetrics`]): each registers its own families with their label
//! sets ([`family`]: a labelled family registers every series up front, so dashboards see
//! zeros rather than gaps), keeps them private, and records through methods named for what
//! happened. A new metric touches its group and its call site.

mod aws;
mod family;
mod preflight;
mod purge;
mod sweep;
mod sync;

pub use aws::AwsMetrics;

pub use family::{Counters, Gauges, Gauges2};
pub use preflight::PreflightMetrics;
pub use purge::PurgeMetrics;
pub use sweep::SweepMetrics;
pub use sync::SyncMetrics;

use prometheus::{Encoder, IntGauge, Opts, Registry, TextEncoder};

use family::Registrar;

/// All metrics of the daemon, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// The standard, unprefixed families (`process_*`).
    process: Registry,
    /// The families whose series all exist from the start.
    dense: std::sync::Arc<Vec<String>>,
    pub aws: AwsMetrics,
    pub sync: SyncMetrics,
    pub purge: PurgeMetrics,
    pub sweep: SweepMetrics,
    pub preflight: PreflightMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Builds and registers every metric. Fails only on an invalid or duplicate name.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("s3_reconciler".into()), None)?;
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build_info = IntGauge::with_opts(
            Opts::new("build_info", "Build information; always 1.")
                .const_label("version", crate::build_info::VERSION)
                .const_label("revision", crate::build_info::REVISION),
        )?;
        let mut r = Registrar::new(&registry);
        r.dense("build_info", build_info)?.set(1);
        let aws = AwsMetrics::register(&mut r)?;
        let sync = SyncMetrics::register(&mut r)?;
        let purge = PurgeMetrics::register(&mut r)?;
        let sweep = SweepMetrics::register(&mut r)?;
        let preflight = PreflightMetrics::register(&mut r)?;
        let dense = std::sync::Arc::new(std::mem::take(&mut r.dense));
        Ok(Metrics {
            registry,
            process,
            dense,
            aws,
            sync,
            purge,
            sweep,
            preflight,
        })
    }

    /// The families (without the prefix) whose every series exists from the start: what a
    /// first scrape must show.
    pub fn families_with_series_at_start(&self) -> &[String] {
        &self.dense
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        let mut families = self.process.gather();
        families.extend(self.registry.gather());
        if let Err(e) = encoder.encode(&families, &mut buf) {
            return format!("# encode error: {e}\n");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{AwsOp, ErrorKind, PurgeOutcome, S3Op, SqsOp, SyncResult};

    /// Every family that promises its series from the start shows them in the first scrape:
    /// a labelled family built without its label set, or registered outside a group, fails.
    #[test]
    fn every_family_shows_its_series_at_start() {
        let m = Metrics::new().unwrap();
        let text = m.render();
        let dense = m.families_with_series_at_start();
        assert!(dense.len() >= 28, "{dense:?}");
        for name in dense {
            assert!(
                text.lines()
                    .any(|l| !l.starts_with('#') && l.starts_with(&format!("s3_reconciler_{name}"))),
                "{name} has no series at start"
            );
        }
        // Every family of the registry but the two whose absent series mean something is
        // dense: a new sparse one has to be said here (and in docs/operations.md).
        let sparse = ["task_ready", "preflight_check"];
        for l in text
            .lines()
            .filter(|l| l.starts_with("# TYPE s3_reconciler_"))
        {
            let name = l["# TYPE s3_reconciler_".len()..]
                .split(' ')
                .next()
                .unwrap_or_default();
            assert!(
                dense.iter().any(|d| d == name) || sparse.contains(&name),
                "{name} is neither dense nor a known sparse family"
            );
        }
        assert!(
            text.contains(&format!(
                "s3_reconciler_build_info{{revision=\"{}\",version=\"{}\"}} 1",
                crate::build_info::REVISION,
                crate::build_info::VERSION
            )),
            "{text}"
        );
        for o in PurgeOutcome::ALL {
            assert!(
                text.contains(&format!(
                    "s3_reconciler_purge_events_total{{result=\"{o}\"}} 0"
                )),
                "{o}"
            );
        }
        for r in SyncResult::ALL {
            assert!(text.contains(&format!(
                "s3_reconciler_sync_runs_total{{result=\"{r}\"}} 0"
            )));
        }
        assert!(text.contains("s3_reconciler_sweep_kept_keys_total{reason=\"max_deletes\"} 0"));
        assert!(text.contains(
            "s3_reconciler_purge_target_entries_deleted_total{entry=\"delete_marker\"} 0"
        ));
        assert!(
            !text.contains("state=\"expected\""),
            "expected is its own gauge"
        );
        assert!(text.contains("s3_reconciler_sync_verify_expected_objects 0"));
        assert!(text.contains("s3_reconciler_purge_dlq_messages 0"));
        // Readiness is absent for a task that is not running.
        assert!(!text.contains("s3_reconciler_task_ready{"), "{text}");
        #[cfg(target_os = "linux")]
        {
            assert!(
                text.contains("\nprocess_resident_memory_bytes "),
                "unprefixed"
            );
            assert!(!text.contains("s3_reconciler_process_"));
        }
    }

    /// Each AWS call's three families carry every (service, operation) the daemon calls, and
    /// the errors every kind, from the start; a call is counted once, timed once.
    #[test]
    fn aws_calls_are_counted_timed_and_their_failures_named() {
        let m = Metrics::new().unwrap();
        let text = m.render();
        let series = |family: &str| {
            text.lines()
                .filter(|l| l.starts_with(&format!("s3_reconciler_{family}{{")))
                .count()
        };
        let ops = AwsOp::all().count();
        assert!(ops >= 23, "{ops}");
        assert_eq!(series("aws_requests_total"), ops);
        assert_eq!(
            series("aws_request_errors_total"),
            ops * ErrorKind::ALL.len()
        );
        assert_eq!(series("aws_request_duration_seconds_count"), ops);
        for op in AwsOp::all() {
            let labels = format!(
                "operation=\"{}\",service=\"{}\"",
                op.operation(),
                op.service()
            );
            assert!(
                text.contains(&format!("s3_reconciler_aws_requests_total{{{labels}}} 0")),
                "{labels}"
            );
        }
        assert!(text.contains(
            "s3_reconciler_aws_request_errors_total{kind=\"throttling\",operation=\"DeleteObjects\",service=\"s3\"} 0"
        ));
        assert!(text.contains(
            "s3_reconciler_aws_requests_total{operation=\"StartTaskExecution\",service=\"datasync\"} 0"
        ));

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt.block_on(m.aws.call(S3Op::DeleteObjects.into(), async { 7 }));
        assert_eq!(out, 7);
        assert_eq!(m.aws.calls(S3Op::DeleteObjects), 1);
        assert_eq!(m.aws.timed_calls(S3Op::DeleteObjects), 1);
        assert_eq!(m.aws.calls(S3Op::DeleteObject), 0);
        m.aws
            .call_failed(SqsOp::ReceiveMessage.into(), ErrorKind::Throttling);
        assert_eq!(
            m.aws.failures(SqsOp::ReceiveMessage, ErrorKind::Throttling),
            1
        );
        assert_eq!(
            m.aws
                .failures(S3Op::ListObjectVersions, ErrorKind::Throttling),
            0
        );
    }

    #[test]
    fn gauge_guards_cannot_drift() {
        let m = Metrics::new().unwrap();
        {
            let _g = m.purge.messages_in_flight(5);
            assert_eq!(m.purge.in_flight(), 5);
            let _w = m.sync.execution_watched();
            assert_eq!(m.sync.executions_in_progress(), 1);
        }
        assert_eq!(m.purge.in_flight(), 0);
        assert_eq!(m.sync.executions_in_progress(), 0);
        m.sync.succeeded_at(100);
        m.sync.succeeded_at(50);
        assert_eq!(m.sync.last_success(), 100);
    }
}
