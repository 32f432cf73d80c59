//! What the sync reports, each event writing its log lines, metrics and health together: a
//! date ended, a verification made.

use chrono::{DateTime, NaiveDate, Utc};
use tracing::{info, warn};

use super::outcome::{DateOutcome, SyncError};
use crate::health::TaskHandle;
use crate::labels::{ObjectState, SyncResult, VerifyResult};
use crate::metrics::Metrics;
use crate::verify::Verification;

/// A date's run ended (`outcome`) after `seconds`, at `at`.
pub(crate) struct DateEnded<'a> {
    pub date: NaiveDate,
    pub outcome: &'a Result<DateOutcome, SyncError>,
    pub seconds: f64,
    pub at: DateTime<Utc>,
}

impl DateEnded<'_> {
    pub(crate) fn record(&self, metrics: &Metrics, health: Option<&TaskHandle>) {
        let result = match self.outcome {
            Ok(o) => o.result(),
            Err(_) => Some(SyncResult::Failed),
        };
        metrics.sync.date_ended(result, self.seconds);
        if result == Some(SyncResult::Success) {
            metrics.sync.succeeded_at(self.at.timestamp());
        }
        let Some(h) = health else { return };
        match self.outcome {
            Ok(DateOutcome::Success { .. }) => h.record_success(),
            Ok(DateOutcome::Failed { reason }) => h.record_failure(reason.clone()),
            Ok(DateOutcome::TimedOut { execution_arn }) => {
                h.record_failure(format!("execution {execution_arn} timed out"))
            }
            Ok(DateOutcome::Incomplete {
                missing,
                size_mismatched,
                late,
            }) => h.record_failure(format!(
                "{}: {missing} object(s) missing, {size_mismatched} of another size and {late} late in the target after every attempt",
                self.date
            )),
            Err(e) => h.record_failure(e.to_string()),
            Ok(_) => {}
        }
    }
}

/// A date's partitions were verified.
pub(crate) struct Verified<'a> {
    pub date: NaiveDate,
    pub verification: &'a Verification,
}

impl Verified<'_> {
    pub(crate) fn record(&self, metrics: &Metrics, health: Option<&TaskHandle>) {
        let v = self.verification;
        let c = v.counts;
        let result = if v.complete() {
            VerifyResult::Complete
        } else {
            VerifyResult::Incomplete
        };
        metrics.sync.verified(
            result,
            c.expected,
            &[
                (ObjectState::Present, c.present),
                (ObjectState::Missing, c.missing),
                (ObjectState::SizeMismatched, c.size_mismatched),
                (ObjectState::Extra, c.extra),
                (ObjectState::Late, c.late),
            ],
        );
        if v.transferred_nothing && !v.complete() {
            warn!(
                expected = c.expected,
                missing = c.missing,
                "DataSync reported SUCCESS with 0 files transferred while the source partitions hold objects; check the task's locations, subdirectories and filters (s3-reconciler doctor)"
            );
        }
        if v.complete() {
            info!(
                partitions = v.partitions,
                expected = c.expected,
                present = c.present,
                extra = c.extra,
                late = c.late,
                "verified: every object is in the target"
            );
        } else {
            warn!(partitions = v.partitions, incomplete = v.incomplete_partitions,
                  expected = c.expected, missing = c.missing, size_mismatched = c.size_mismatched,
                  examples = ?v.missing_keys, "verification found objects missing from the target");
        }
        if let Some(h) = health {
            let mut detail = serde_json::to_value(v).unwrap_or_default();
            detail["date"] = serde_json::json!(self.date);
            h.set_detail("last_verification", detail);
        }
    }
}
