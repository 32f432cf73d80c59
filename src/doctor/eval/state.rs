//! The state bucket's verdict: the probe document written, read and deleted.

use super::check::{CallError, Check};
use crate::labels::{CheckId, ErrorKind};

/// What probing the state bucket found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProbe {
    /// An unconditional write of the probe document.
    pub write: Result<(), CallError>,
    /// A create-if-absent of the same key: `true` when refused (412), as it must be.
    pub conditional_refused: Result<bool, CallError>,
    /// The probe read back equal to what was written.
    pub read_back: Result<bool, CallError>,
    /// Reading a key that does not exist.
    pub missing: Result<(), CallError>,
}

/// `state.bucket`: claims can be written conditionally and read back, and a missing claim
/// reads as not found.
pub fn state(bucket: &str, prefix: &str, p: &StateProbe) -> Check {
    let c = CheckId::StateBucket;
    let resource = format!("s3://{bucket}/{prefix}");
    let problem = written(bucket, prefix, p)
        .or_else(|| conditional(p))
        .or_else(|| read_back(bucket, prefix, p))
        .or_else(|| missing(bucket, p));
    match problem {
        Some((detail, fix)) => Check::fail(c, resource, detail, fix),
        None => Check::pass(
            c,
            resource,
            "claims are written conditionally, read back, and a missing one reads as not found",
        ),
    }
}

/// What is wrong and how to fix it.
type Problem = Option<(String, String)>;

fn written(bucket: &str, prefix: &str, p: &StateProbe) -> Problem {
    let e = p.write.as_ref().err()?;
    Some((
        format!("cannot write a claim: {}", e.line),
        format!("allow the daemon's role s3:PutObject and s3:GetObject on s3://{bucket}/{prefix}*"),
    ))
}

fn conditional(p: &StateProbe) -> Problem {
    match &p.conditional_refused {
        Ok(true) => None,
        Ok(false) => Some((
            "a create-if-absent write (If-None-Match: *) over an existing object succeeded: this store ignores conditional writes, so two replicas could both claim a date".into(),
            "use an S3 bucket (or a store that honours If-None-Match and If-Match) for state.bucket".into(),
        )),
        Err(e) => Some((
            format!("conditional write failed: {}", e.line),
            "allow the daemon's role s3:PutObject on the prefix".into(),
        )),
    }
}

fn read_back(bucket: &str, prefix: &str, p: &StateProbe) -> Problem {
    match &p.read_back {
        Ok(true) => None,
        Ok(false) => Some((
            "the probe read back different from what was written".into(),
            "check for another writer or a caching proxy in front of the bucket".into(),
        )),
        Err(e) => Some((
            format!("cannot read a claim back: {}", e.line),
            format!("allow the daemon's role s3:GetObject on s3://{bucket}/{prefix}*"),
        )),
    }
}

fn missing(bucket: &str, p: &StateProbe) -> Problem {
    match &p.missing {
        Ok(()) => None,
        Err(e) if e.kind == ErrorKind::AccessDenied => Some((
            "reading a claim that does not exist answers AccessDenied, not NotFound: S3 hides existence from callers that may not list the bucket, so the first sync of every date would fail".into(),
            format!(
                "allow the daemon's role s3:ListBucket on arn:aws:s3:::{bucket} (no s3:prefix condition: S3 checks it without one)"
            ),
        )),
        Err(e) => Some((
            format!("reading a missing claim failed: {}", e.line),
            "check the state bucket's policy".into(),
        )),
    }
}
