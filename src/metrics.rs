//! Prometheus metrics. Every family is prefixed `s3_reconciler_` by the registry; values are in
//! base units; labels come from small fixed sets (never keys, bucket names or error text).

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Outcomes of one purge event record. Fixed set: the label never carries free text.
pub const PURGE_OUTCOMES: &[&str] = &[
    "purged",
    "nothing_to_purge",
    "source_present",
    "out_of_scope",
    "ignored_event",
    "test_event",
    "invalid",
    "deferred",
    "refused",
    "failed",
];

/// Results of one sync date run.
pub const SYNC_RESULTS: &[&str] = &["success", "error", "timeout", "skipped", "failed"];

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
    pub purge_events: IntCounterVec,
    pub purge_deleted: IntCounterVec,
    pub purge_lag: Histogram,
    pub purge_messages: IntCounterVec,
    pub purge_in_flight: IntGauge,
    pub purge_dlq_configured: IntGauge,
    pub s3_requests: IntCounterVec,
    pub task_ready: IntGaugeVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: T,
) -> Result<T, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
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
                "Patterns in the last include filter computed.",
            )?,
            sync_executions_in_progress: gauge(
                "sync_executions_in_progress",
                "DataSync executions this process is currently watching.",
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
            s3_requests: counter_vec(
                "s3_requests_total",
                "S3 API requests made, by operation.",
                &["operation"],
            )?,
            task_ready: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "task_ready",
                        "1 when the task (sync or purge) is ready, else 0; absent when disabled.",
                    ),
                    &["task"],
                )?,
            )?,
            registry,
        };
        for o in PURGE_OUTCOMES {
            m.purge_events.with_label_values(&[o]);
        }
        for r in SYNC_RESULTS {
            m.sync_runs.with_label_values(&[r]);
        }
        for k in ["version", "delete_marker"] {
            m.purge_deleted.with_label_values(&[k]);
        }
        for r in ["deleted", "failed"] {
            m.purge_messages.with_label_values(&[r]);
        }
        Ok(m)
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

    /// Counts one S3 request of `operation` (a fixed operation name).
    pub fn s3_request(&self, operation: &'static str) {
        self.s3_requests.with_label_values(&[operation]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_prefixed_and_registered() {
        let m = Metrics::new().unwrap();
        let text = m.render();
        assert!(
            text.contains("s3_reconciler_build_info{version=\""),
            "{text}"
        );
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(line.starts_with("s3_reconciler_"), "unprefixed: {line}");
        }
        for family in [
            "sync_runs_total",
            "sync_last_success_timestamp_seconds",
            "purge_events_total",
            "purge_target_entries_deleted_total",
            "purge_dlq_configured",
        ] {
            assert!(
                text.contains(&format!("s3_reconciler_{family}")),
                "{family}"
            );
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("s3_reconciler_process_resident_memory_bytes"));
    }
}
