//! A check's outcome, and a failed call as a check sees it.

use serde::Serialize;

use crate::labels::{CheckId, CheckStatus, ErrorKind};

/// One check's outcome, as printed and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: CheckId,
    pub status: CheckStatus,
    /// What was looked at: `s3://bucket`, a queue URL, a task ARN.
    pub resource: String,
    /// What was found.
    pub detail: String,
    /// What to do about it (absent on a pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(check: CheckId, resource: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            check,
            status: CheckStatus::Pass,
            resource: resource.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(
        check: CheckId,
        resource: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            status: CheckStatus::Warn,
            fix: Some(fix.into()),
            ..Check::pass(check, resource, detail)
        }
    }

    pub fn fail(
        check: CheckId,
        resource: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            status: CheckStatus::Fail,
            fix: Some(fix.into()),
            ..Check::pass(check, resource, detail)
        }
    }
}

/// A failed AWS call, as a check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub kind: ErrorKind,
    pub code: Option<String>,
    /// The call's one-line description.
    pub line: String,
    /// The bucket's real region, when S3 said (`x-amz-bucket-region`).
    pub bucket_region: Option<String>,
}
