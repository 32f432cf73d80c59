//! The reconciliation sweep: keys walked, orphans found and what became of them, runs.

use prometheus::{IntCounter, IntGauge};

use super::family::{Counters, Registrar};
use crate::labels::{KeptReason, Side, SweepResult};

#[derive(Clone)]
pub struct SweepMetrics {
    scanned: Counters<Side>,
    orphans: IntCounter,
    purged: IntCounter,
    would_purge: IntCounter,
    kept: Counters<KeptReason>,
    runs: Counters<SweepResult>,
    last_success: IntGauge,
    last_orphans: IntGauge,
}

impl SweepMetrics {
    pub(crate) fn register(r: &mut Registrar) -> Result<Self, prometheus::Error> {
        Ok(SweepMetrics {
            scanned: r.counters(
                "sweep_keys_scanned_total",
                "Keys the sweep walked past, by side.",
                "side",
            )?,
            orphans: r.counter(
                "sweep_orphans_total",
                "Target keys the sweep found orphaned (old enough to decide).",
            )?,
            purged: r.counter("sweep_purged_keys_total", "Orphaned keys the sweep purged.")?,
            would_purge: r.counter(
                "sweep_would_purge_keys_total",
                "Orphaned keys a report or dry-run sweep would have purged.",
            )?,
            kept: r.counters(
                "sweep_kept_keys_total",
                "Orphaned keys the sweep left, by reason.",
                "reason",
            )?,
            runs: r.counters("sweep_runs_total", "Sweep runs by result.", "result")?,
            last_success: r.gauge(
                "sweep_last_success_timestamp_seconds",
                "Unix time the last sweep run completed within its guardrails.",
            )?,
            last_orphans: r.gauge(
                "sweep_last_orphans",
                "Orphans found by the last completed sweep run.",
            )?,
        })
    }

    pub(crate) fn keys_scanned(&self, side: Side, n: u64) {
        self.scanned.inc_by(side, n);
    }

    pub(crate) fn orphan_found(&self) {
        self.orphans.inc();
    }

    /// What became of one orphan: purged (wholly or partly), would have been, or kept for
    /// `reason`.
    pub(crate) fn orphan_resolved(
        &self,
        purged: bool,
        would_purge: bool,
        reason: Option<KeptReason>,
    ) {
        if purged {
            self.purged.inc();
        }
        if would_purge {
            self.would_purge.inc();
        }
        if let Some(r) = reason {
            self.kept.inc(r);
        }
    }

    pub(crate) fn run_ended(&self, result: SweepResult) {
        self.runs.inc(result);
    }

    /// A run completed within its guardrails at `unix_seconds`, having found `orphans`.
    pub(crate) fn run_completed(&self, unix_seconds: i64, orphans: u64) {
        self.last_completed_at(unix_seconds);
        self.last_orphans.set(orphans as i64);
    }

    /// Raises the last-success gauge to `unix_seconds` (after a restart, from the leases).
    pub(crate) fn last_completed_at(&self, unix_seconds: i64) {
        let g = &self.last_success;
        g.set(g.get().max(unix_seconds));
    }

    pub fn purged(&self) -> u64 {
        self.purged.get()
    }

    pub fn would_purge(&self) -> u64 {
        self.would_purge.get()
    }

    pub fn runs(&self, result: SweepResult) -> u64 {
        self.runs.get(result)
    }

    pub fn last_success(&self) -> i64 {
        self.last_success.get()
    }

    pub fn last_orphans(&self) -> i64 {
        self.last_orphans.get()
    }

    pub fn scanned(&self, side: Side) -> u64 {
        self.scanned.get(side)
    }
}
