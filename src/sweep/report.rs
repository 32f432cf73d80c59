//! A sweep's report: each orphan's line, the run's summary, how a decided key ends (its fate),
//! the per-prefix tally that counts and reports them, and how results combine.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::Serialize;

use super::frontier::Frontier;
use super::lease::Stats;
use super::nominate::Orphan;
use super::progress::{Progress, Snapshot};
use crate::aws::s3::Entry;
use crate::health::TaskHandle;
use crate::labels::{KeptReason, Side, SweepResult};
use crate::merge::Joined;
use crate::metrics::Metrics;
use crate::purge::{KeyOutcome, PurgeError};

/// What was done with one orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Every target entry of the key was deleted.
    Purged,
    /// Some entries were deleted; others are left (the race guard, a failed delete).
    PartlyPurged,
    /// A dry run or a report: decided, and it would have been purged.
    WouldPurge,
    Kept,
}

/// Where each orphan's line goes as it is decided (shards are walked in parallel).
pub type OnLine<'a> = dyn Fn(&OrphanLine) + Send + Sync + 'a;

/// One line of a sweep's report: an orphan and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanLine {
    pub prefix: String,
    #[serde(flatten)]
    pub orphan: Orphan,
    pub action: Action,
    /// Target entries deleted (or, in a dry run, that would be).
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<KeptReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The last line of a sweep's report.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub summary: bool,
    pub prefixes: Vec<String>,
    /// The run this process took part in (several processes, and restarts, share one).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// Nothing was deleted: a dry run, a report, or `purge.dry_run`.
    pub dry_run: bool,
    #[serde(flatten)]
    pub stats: Stats,
    /// Keys the run has reserved for deletion so far, across restarts and replicas (at most
    /// `sweep.max_deletes`).
    pub reserved: u32,
    /// The run's shards as this process saw them at its end.
    pub shards: Snapshot,
    pub duration_seconds: f64,
    pub result: SweepResult,
}

impl Summary {
    /// The run completed within its guardrails.
    pub fn ok(&self) -> bool {
        self.result == SweepResult::Completed
    }
}

/// How one decided orphan ended.
#[derive(Debug)]
pub(crate) enum Fate {
    Purged {
        deleted: usize,
    },
    /// Entries deleted, others left; with the error when a delete failed.
    PartlyPurged {
        deleted: usize,
        error: Option<String>,
    },
    WouldPurge {
        deleted: usize,
    },
    Kept(KeptReason),
    Failed(KeptReason, String),
}

impl Fate {
    /// Whether the key used up a reservation of the run's budget: something was deleted.
    pub(crate) fn deleted_something(&self) -> bool {
        matches!(self, Fate::Purged { .. } | Fate::PartlyPurged { .. })
    }
}

/// What one shard's walk has counted and settled so far.
pub(crate) struct Tally<'a> {
    pub(crate) prefix: &'a str,
    metrics: &'a Metrics,
    pub(crate) progress: &'a Progress,
    pub(crate) stats: Stats,
    pub(crate) frontier: Frontier,
    pub(crate) result: SweepResult,
    /// Keys scanned (source, target) already counted in the metrics and the progress.
    flushed: (u64, u64),
}

impl<'a> Tally<'a> {
    pub(crate) fn new(
        prefix: &'a str,
        metrics: &'a Metrics,
        progress: &'a Progress,
        frontier: Frontier,
    ) -> Self {
        Tally {
            prefix,
            metrics,
            progress,
            stats: Stats::default(),
            frontier,
            result: SweepResult::Completed,
            flushed: (0, 0),
        }
    }

    /// Makes the prefix's result at least as severe as `r`.
    pub(crate) fn worsen(&mut self, r: SweepResult) {
        self.result = worst(self.result, r);
    }

    pub(crate) fn scanned(&mut self, j: &Joined<Entry, Entry>) {
        self.stats.scanned_source += u64::from(!j.left.is_empty());
        self.stats.scanned_target += u64::from(!j.right.is_empty());
    }

    /// Counts the keys scanned since the last call in the metrics and the progress (once a
    /// page, not once a key: a labelled counter is a hash lookup).
    pub(crate) fn flush_scanned(&mut self) {
        let (source, target) = (self.stats.scanned_source, self.stats.scanned_target);
        let (s, t) = (source - self.flushed.0, target - self.flushed.1);
        self.metrics.sweep.keys_scanned(Side::Source, s);
        self.metrics.sweep.keys_scanned(Side::Target, t);
        self.progress.scanned(s + t);
        self.flushed = (source, target);
    }

    /// A decided candidate: counted, reported, and the checkpoint may pass it.
    pub(crate) fn decided(&mut self, (orphan, fate): (Orphan, Fate), on_line: &OnLine<'_>) {
        let purged = matches!(fate, Fate::Purged { .. });
        let key = orphan.key.clone();
        self.report(orphan, fate, on_line);
        self.frontier.decided(&key, purged);
    }

    /// An orphan's fate, counted and reported.
    pub(crate) fn report(&mut self, orphan: Orphan, fate: Fate, on_line: &OnLine<'_>) {
        let (action, deleted, reason, error) = match fate {
            Fate::Purged { deleted } => (Action::Purged, deleted, None, None),
            Fate::PartlyPurged { deleted, error } => (Action::PartlyPurged, deleted, None, error),
            Fate::WouldPurge { deleted } => (Action::WouldPurge, deleted, None, None),
            Fate::Kept(r) => (Action::Kept, 0, Some(r), None),
            Fate::Failed(r, e) => (Action::Kept, 0, Some(r), Some(e)),
        };
        match (action, reason) {
            (Action::Purged, _) => self.stats.purged += 1,
            (Action::PartlyPurged, _) => self.stats.partly_purged += 1,
            (Action::WouldPurge, _) => self.stats.would_purge += 1,
            (_, Some(r)) => *self.stats.kept.entry(r).or_default() += 1,
            _ => {}
        }
        let failed = action == Action::PartlyPurged && error.is_some();
        match reason {
            Some(KeptReason::MaxDeletes) => {
                self.result = worst(self.result, SweepResult::ExceededMaxDeletes)
            }
            Some(KeptReason::AfterError | KeptReason::Failed) => {
                self.result = worst(self.result, SweepResult::StoppedAfterError)
            }
            _ if failed => self.result = worst(self.result, SweepResult::StoppedAfterError),
            _ => {}
        }
        self.metrics.sweep.orphan_resolved(
            matches!(action, Action::Purged | Action::PartlyPurged),
            action == Action::WouldPurge,
            reason,
        );
        on_line(&OrphanLine {
            prefix: self.prefix.to_string(),
            orphan,
            action,
            deleted,
            reason,
            error,
        });
    }
}

/// The fate of a decided key.
pub(crate) fn fate(res: Result<KeyOutcome, PurgeError>, dry: bool) -> Fate {
    match res {
        Ok(KeyOutcome::Purged { deleted, .. }) if dry => Fate::WouldPurge {
            deleted: deleted.len(),
        },
        Ok(KeyOutcome::Purged {
            deleted,
            deferred: 0,
            ..
        }) => Fate::Purged {
            deleted: deleted.len(),
        },
        Ok(KeyOutcome::Purged { deleted, .. }) => Fate::PartlyPurged {
            deleted: deleted.len(),
            error: None,
        },
        Ok(KeyOutcome::SourcePresent) => Fate::Kept(KeptReason::SourcePresent),
        Ok(KeyOutcome::NothingToPurge) => Fate::Kept(KeptReason::NothingToPurge),
        Ok(KeyOutcome::NotReplica { .. }) => Fate::Kept(KeptReason::NotReplica),
        Ok(KeyOutcome::Deferred { .. }) => Fate::Kept(KeptReason::RaceGuard),
        Ok(KeyOutcome::Refused { .. }) => Fate::Kept(KeptReason::Refused),
        Ok(KeyOutcome::TooYoung) => Fate::Kept(KeptReason::TooYoung),
        Ok(KeyOutcome::Stopped) => Fate::Kept(KeptReason::AfterError),
        Err(PurgeError::Delete { error, deleted }) if !deleted.is_empty() => Fate::PartlyPurged {
            deleted: deleted.len(),
            error: Some(error.to_string()),
        },
        Err(e) => Fate::Failed(KeptReason::Failed, e.to_string()),
    }
}

/// Whether a shard's walk reached its end (its lease is completed).
pub(crate) fn lease_finished(r: SweepResult) -> bool {
    !matches!(
        r,
        SweepResult::Interrupted | SweepResult::Failed | SweepResult::Busy
    )
}

/// The more severe of two results.
pub(crate) fn worst(a: SweepResult, b: SweepResult) -> SweepResult {
    let rank = |r: SweepResult| match r {
        SweepResult::Completed => 0,
        SweepResult::Busy => 1,
        SweepResult::ExceededMaxDeletes => 2,
        SweepResult::StoppedAfterError => 3,
        SweepResult::Interrupted => 4,
        SweepResult::Failed => 5,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// A sweep run ended: counted, and its health recorded.
pub(crate) struct SweepEnded<'a> {
    pub result: SweepResult,
    pub stats: &'a Stats,
}

impl SweepEnded<'_> {
    pub(crate) fn record(&self, metrics: &Metrics, health: Option<&TaskHandle>) {
        metrics.sweep.run_ended(self.result);
        if self.result == SweepResult::Completed {
            metrics
                .sweep
                .run_completed(Utc::now().timestamp(), self.stats.orphans);
        }
        if let Some(h) = health {
            match self.result {
                SweepResult::Completed | SweepResult::Busy => h.record_success(),
                other => h.record_failure(format!("sweep ended {other}")),
            }
        }
    }
}

/// One report line as a JSON object on one line (the `sweep` command prints it; the daemon
/// logs it).
pub(crate) fn json_line(line: &OrphanLine) -> String {
    serde_json::to_string(line).unwrap_or_default()
}

/// Kept reasons with their counts, for logs.
pub(crate) fn kept_summary(kept: &BTreeMap<KeptReason, u64>) -> String {
    kept.iter()
        .map(|(r, n)| format!("{r}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity() {
        assert_eq!(
            worst(SweepResult::Completed, SweepResult::Busy),
            SweepResult::Busy
        );
        assert_eq!(
            worst(
                SweepResult::StoppedAfterError,
                SweepResult::ExceededMaxDeletes
            ),
            SweepResult::StoppedAfterError
        );
    }
}
