//! `s3-reconciler sync`: run dates now, or show exactly what would be sent (`--dry-run`).
//! Returns typed reports; the CLI prints them and maps them to an exit code.

use chrono::NaiveDate;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::plan::Plan;
use super::runner::{DateOutcome, RunOpts, SyncError, Syncer};

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
    pub fn render(&self) -> String {
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
            DateReport::Ran(date, o) => {
                json!({"date": date, "result": o.label(), "detail": format!("{o:?}")}).to_string()
            }
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
