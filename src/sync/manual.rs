//! `s3-reconciler sync`: run dates now, or show exactly what would be sent (`--dry-run`).
//! Returns typed reports; the CLI prints them and maps them to an exit code.

use chrono::NaiveDate;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::outcome::{DateOutcome, SyncError};
use super::plan::Plan;
use super::runner::{RunOpts, Syncer};
use crate::verify::{self, PartitionReport, Verification};

/// What `sync` does with each date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plan and print the filters; call no DataSync API, write no claim.
    DryRun,
    /// Claim and run; `wait` follows the executions to their end.
    Run { wait: bool },
}

/// What became of one date.
#[derive(Debug)]
pub enum DateReport {
    Planned(NaiveDate, Plan),
    Ran(NaiveDate, DateOutcome),
    Failed(NaiveDate, SyncError),
}

impl DateReport {
    /// Whether the date went as asked: planned, synced, or started with `--no-wait`.
    pub fn ok(&self) -> bool {
        matches!(
            self,
            DateReport::Planned(..)
                | DateReport::Ran(_, DateOutcome::Success { .. } | DateOutcome::Started { .. })
        )
    }

    /// The lines to print: the dry run's filters as text, a run's result as one JSON object.
    pub(crate) fn render(&self) -> String {
        match self {
            DateReport::Planned(date, p) => {
                let window: Vec<String> = p.dates.iter().map(|d| d.to_string()).collect();
                let mut out = format!(
                    "date {date} (partitions {}): {} project(s), {} pattern(s), {} filter(s)",
                    window.join(", "),
                    p.projects,
                    p.patterns,
                    p.filters.len()
                );
                for (i, f) in p.filters.iter().enumerate() {
                    out.push_str(&format!(
                        "\nfilter {}/{} ({} chars): {f}",
                        i + 1,
                        p.filters.len(),
                        f.len()
                    ));
                }
                out
            }
            DateReport::Ran(date, o) => o.to_json(*date).to_string(),
            DateReport::Failed(date, e) => {
                json!({"date": date, "result": "failed", "error": e.to_string()}).to_string()
            }
        }
    }
}

/// Runs (or plans) each date in turn. Unlike the scheduler it re-runs dates already synced or
/// given up; it still keeps off a date another runner is actively syncing.
pub async fn run(syncer: &Syncer, dates: &[NaiveDate], mode: Mode) -> Vec<DateReport> {
    let never = CancellationToken::new();
    let mut out = Vec::with_capacity(dates.len());
    for &date in dates {
        let report = match mode {
            Mode::DryRun => match syncer.plan(date).await {
                Ok(p) => DateReport::Planned(date, p),
                Err(e) => DateReport::Failed(date, e),
            },
            Mode::Run { wait } => {
                let opts = RunOpts { force: true, wait };
                match syncer.run_date(date, opts, &never).await {
                    Ok(o) => DateReport::Ran(date, o),
                    Err(e) => DateReport::Failed(date, e),
                }
            }
        };
        out.push(report);
    }
    out
}

/// What `verify` found: one report per partition, the dates it could not verify, and the sum.
#[derive(Debug)]
pub struct VerifyRun {
    pub reports: Vec<PartitionReport>,
    pub failures: Vec<(NaiveDate, SyncError)>,
    pub summary: Verification,
}

impl VerifyRun {
    /// Every partition complete and every date verified.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.summary.complete()
    }

    /// One JSON line per partition, one per date that could not be verified, then a summary.
    pub(crate) fn render(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .reports
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect();
        out.extend(
            self.failures
                .iter()
                .map(|(d, e)| json!({"date": d, "error": e.to_string()}).to_string()),
        );
        let mut summary = serde_json::to_value(&self.summary).unwrap_or_default();
        summary["summary"] = json!(true);
        summary["complete"] = json!(self.ok());
        out.push(summary.to_string());
        out
    }
}

/// Compares, for each date, every partition its plan covers (the date and its lookback days,
/// each project discovered in the source) in the source and the target.
pub async fn verify(syncer: &Syncer, dates: &[NaiveDate]) -> VerifyRun {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for &date in dates {
        let parts = match syncer.plan(date).await {
            Ok(p) => p
                .partitions
                .into_iter()
                .map(|p| (p, None))
                .collect::<Vec<_>>(),
            Err(e) => {
                failures.push((date, e));
                continue;
            }
        };
        match verify::partitions(&syncer.source, &syncer.target, &parts).await {
            Ok(r) => reports.extend(r),
            Err(e) => failures.push((date, SyncError::Verify(e))),
        }
    }
    let summary = Verification::summarize(&reports, None);
    VerifyRun {
        reports,
        failures,
        summary,
    }
}
