//! How one date ended for a runner, and the errors that stop it.

use chrono::NaiveDate;
use tracing::info;

use super::claim::Skip;
use super::plan::PlanError;
use crate::aws::AwsError;
use crate::labels::{ErrorKind, SyncResult};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    State(#[from] StoreError),
    #[error(transparent)]
    DataSync(AwsError),
    /// It cannot be known whether an execution was started (its start's answer was lost, and
    /// so was the listing that would have found it): the claim stays running and is looked at
    /// again once it goes stale.
    #[error("cannot tell whether an execution was started: {0}")]
    Unsure(AwsError),
    #[error("listing projects: {0}")]
    Discover(AwsError),
    #[error("planning {date}: {source}")]
    Plan {
        date: NaiveDate,
        #[source]
        source: PlanError,
    },
    #[error("verifying: {0}")]
    Verify(AwsError),
}

impl SyncError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SyncError::State(e) => e.kind(),
            SyncError::DataSync(e)
            | SyncError::Unsure(e)
            | SyncError::Discover(e)
            | SyncError::Verify(e) => e.kind,
            SyncError::Plan { .. } => ErrorKind::Invalid,
        }
    }
}

/// How one date ended for this runner. Serialized as `{"result": label, ...fields}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DateOutcome {
    Success {
        files: i64,
        bytes: i64,
    },
    /// An execution ended in ERROR (code and detail from DataSync).
    #[serde(rename = "error")]
    Failed {
        reason: String,
    },
    #[serde(rename = "timeout")]
    TimedOut {
        execution_arn: String,
    },
    /// The executions succeeded, but objects are still missing, of another size or late
    /// after `sync.max_attempts` attempts (follow-ups included).
    Incomplete {
        missing: u64,
        size_mismatched: u64,
        late: u64,
    },
    /// Nothing to sync: no project under `sync.prefix`, none left after the globs, or every
    /// partition empty (the writer is late).
    Empty,
    /// Every object was there except some written after their execution started: a
    /// follow-up runs at the claim's retry time, then the date is verified again.
    Late {
        objects: u64,
    },
    /// Nothing done; the reason says why (already synced, claimed elsewhere, gave up).
    Skipped {
        reason: String,
    },
    /// `--no-wait`: the first execution was started and not followed.
    Started {
        execution_arn: String,
    },
    /// Shutdown while following an execution; the claim stays with this holder to resume.
    Interrupted,
}

impl DateOutcome {
    /// The run's result for `sync_runs_total`; `None` while it is still going on elsewhere.
    pub fn result(&self) -> Option<SyncResult> {
        match self {
            DateOutcome::Success { .. } => Some(SyncResult::Success),
            DateOutcome::Failed { .. } => Some(SyncResult::Error),
            DateOutcome::TimedOut { .. } => Some(SyncResult::Timeout),
            DateOutcome::Incomplete { .. } => Some(SyncResult::Incomplete),
            DateOutcome::Empty => Some(SyncResult::Empty),
            DateOutcome::Late { .. } => Some(SyncResult::Late),
            DateOutcome::Skipped { .. } => Some(SyncResult::Skipped),
            DateOutcome::Started { .. } | DateOutcome::Interrupted => None,
        }
    }

    /// The outcome as a JSON object for `/status` and command output, with `date` added.
    pub fn to_json(&self, date: NaiveDate) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("date".into(), serde_json::json!(date));
        }
        v
    }
}

pub(crate) fn skipped(why: Skip) -> DateOutcome {
    info!(reason = %why, "sync date skipped");
    DateOutcome::Skipped {
        reason: why.to_string(),
    }
}
