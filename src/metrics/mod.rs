//! Prometheus metrics. Every family is prefixed `s3_reconciler_` by the registry; values are in
//! base units; labels come from the enums in [`crate::labels`].
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

pub use family::{Counters, Counters2, Gauges, Gauges2};
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
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build_info = IntGauge::with_opts(
            Opts::new("build_info", "Build information; always 1.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        registry.register(Box::new(build_info.clone()))?;
        build_info.set(1);
        let mut r = Registrar::new(&registry);
        let aws = AwsMetrics::register(&mut r)?;
        let sync = SyncMetrics::register(&mut r)?;
        let purge = PurgeMetrics::register(&mut r)?;
        let sweep = SweepMetrics::register(&mut r)?;
        let preflight = PreflightMetrics::register(&mut r)?;
        let dense = std::sync::Arc::new(std::mem::take(&mut r.dense));
        Ok(Metrics {
            registry,
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
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            return format!("# encode error: {e}\n");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{ErrorKind, PurgeOutcome, Service, SyncResult};

    /// Every family that promises its series from the start shows them in the first scrape:
    /// a labelled family built without its label set, or registered outside a group, fails.
    #[test]
    fn every_family_shows_its_series_at_start() {
        let m = Metrics::new().unwrap();
        let text = m.render();
        let dense = m.families_with_series_at_start();
        assert!(dense.len() >= 25, "{dense:?}");
        for name in dense {
            assert!(
                text.lines()
                    .any(|l| !l.starts_with('#') && l.starts_with(&format!("s3_reconciler_{name}"))),
                "{name} has no series at start"
            );
        }
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
        assert!(text.contains("s3_reconciler_sweep_kept_keys_total{reason=\"max_deletes\"} 0"));
        assert!(text.contains("s3_reconciler_s3_requests_total{operation=\"DeleteObjects\"} 0"));
        #[cfg(target_os = "linux")]
        assert!(text.contains("s3_reconciler_process_resident_memory_bytes"));
        // Readiness is absent for a task that is not running.
        assert!(!text.contains("s3_reconciler_task_ready{"), "{text}");
        m.aws.call_failed(Service::S3, ErrorKind::Throttling);
        assert_eq!(m.aws.failures(Service::S3, ErrorKind::Throttling), 1);
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
