//! The buckets' verdicts: reachable, versioned; in `mirror-versions`, replicated and not
//! expired by a lifecycle rule.

use super::check::{CallError, Check};
use crate::aws::s3::{LifecycleRule, ReplicationRule};
use crate::labels::{CheckId, ErrorKind};

/// `source.bucket` / `target.bucket`: a one-entry version listing answered.
pub fn bucket(
    check: CheckId,
    bucket: &str,
    region: &str,
    role: &str,
    listed: Result<(), CallError>,
) -> Check {
    let resource = format!("s3://{bucket}");
    let e = match listed {
        Ok(()) => return Check::pass(check, resource, format!("reachable in {region}")),
        Err(e) => e,
    };
    let region_problem = matches!(
        e.code.as_deref(),
        Some(
            "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException"
        )
    ) || e.bucket_region.as_deref().is_some_and(|r| r != region);
    let (detail, fix) = match (e.kind, region_problem) {
        (_, true) => (
            format!(
                "the bucket is in {}, not in the configured {region}",
                e.bucket_region.as_deref().unwrap_or("another region")
            ),
            format!("set {role}.region to the bucket's region"),
        ),
        (ErrorKind::NotFound, _) => (
            "the bucket does not exist".to_string(),
            format!("check {role}.bucket (and the account its credentials belong to)"),
        ),
        (ErrorKind::AccessDenied, _) => (
            format!("access denied: {}", e.line),
            format!(
                "allow the daemon's role s3:ListBucketVersions on s3://{bucket} (in the bucket's account too, for a cross-account bucket)"
            ),
        ),
        _ => (
            e.line.clone(),
            format!("check {role}.endpoint_url, the network path to S3, and the credentials"),
        ),
    };
    Check::fail(check, resource, detail, fix)
}

/// `source.replication` (`mirror-versions`): enabled replication rules to the target bucket
/// cover every key prefix the purge acts on (`purge.prefixes`), since only replicas of lost
/// versions are deleted and a version never replicated has no replica to prove.
pub fn replication(
    bucket: &str,
    target: &str,
    rules: Result<Option<Vec<ReplicationRule>>, CallError>,
    scope: &[String],
) -> Check {
    let resource = format!("s3://{bucket}");
    let fix = format!(
        "add an enabled replication rule from s3://{bucket} to s3://{target} covering purge.prefixes, or use purge.mode = \"when-source-empty\""
    );
    let rules = match rules {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Check::fail(
                CheckId::SourceReplication,
                resource,
                "the bucket has no replication configuration, but purge.mode = \"mirror-versions\" mirrors replicas",
                fix,
            );
        }
        Err(e) => {
            return Check::fail(
                CheckId::SourceReplication,
                resource,
                format!("cannot read the replication configuration: {}", e.line),
                "allow the daemon's role s3:GetReplicationConfiguration on the source bucket",
            );
        }
    };
    let uncovered = uncovered(&rules, target, scope);
    if uncovered.is_empty() {
        return Check::pass(
            CheckId::SourceReplication,
            resource,
            format!("replication to s3://{target} covers purge.prefixes"),
        );
    }
    Check::fail(
        CheckId::SourceReplication,
        resource,
        format!("no enabled replication rule to s3://{target} covers {uncovered}"),
        fix,
    )
}

/// The prefixes of `scope` no enabled rule replicates to `target`, quoted for a message.
fn uncovered(rules: &[ReplicationRule], target: &str, scope: &[String]) -> String {
    let to_target = |r: &&ReplicationRule| {
        r.enabled && r.destination.trim_start_matches("arn:aws:s3:::") == target
    };
    scope
        .iter()
        .filter(|p| {
            !rules
                .iter()
                .filter(to_target)
                .any(|r| r.prefix.as_deref().is_some_and(|rp| p.starts_with(rp)))
        })
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `target.lifecycle` (`mirror-versions`): a rule that expires current versions in the target
/// writes delete markers there that the source never had. They are never deleted (not
/// replicas), so the target drifts from the source; worth knowing, not an outage.
pub fn lifecycle(
    bucket: &str,
    rules: Result<Option<Vec<LifecycleRule>>, CallError>,
    scope: &[String],
) -> Check {
    let resource = format!("s3://{bucket}");
    let rules = match rules {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            return Check::warn(
                CheckId::TargetLifecycle,
                resource,
                format!("cannot read the lifecycle configuration: {}", e.line),
                "allow the daemon's role s3:GetLifecycleConfiguration on the target bucket",
            );
        }
    };
    let overlaps = |rp: &str| {
        scope
            .iter()
            .any(|p| p.starts_with(rp) || rp.starts_with(p.as_str()))
    };
    let expiring: Vec<String> = rules
        .iter()
        .filter(|r| r.enabled && r.expires_current && r.prefix.as_deref().is_none_or(overlaps))
        .map(|r| format!("`{}`", r.id))
        .collect();
    if expiring.is_empty() {
        return Check::pass(
            CheckId::TargetLifecycle,
            resource,
            "no lifecycle rule expires current versions under purge.prefixes",
        );
    }
    Check::warn(
        CheckId::TargetLifecycle,
        resource,
        format!(
            "lifecycle rule(s) {} expire current versions under purge.prefixes: their delete markers are not replicas, so mirror-versions leaves them and the target drifts from the source",
            expiring.join(", ")
        ),
        "expire only noncurrent versions in a mirrored target, or use purge.mode = \"when-source-empty\"",
    )
}

/// `source.versioning` / `target.versioning`.
pub fn versioning(
    check: CheckId,
    bucket: &str,
    status: Result<Option<String>, CallError>,
) -> Check {
    let resource = format!("s3://{bucket}");
    let fix = format!(
        "enable versioning: aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
    );
    match status {
        Ok(Some(s)) if s == "Enabled" => Check::pass(check, resource, "versioning Enabled"),
        Ok(Some(s)) => Check::fail(
            check,
            resource,
            format!(
                "versioning is {s}: new objects get the null version, and permanent deletes are not what the purge assumes"
            ),
            fix,
        ),
        Ok(None) => Check::fail(check, resource, "versioning was never enabled", fix),
        Err(e) => Check::fail(
            check,
            resource,
            format!("cannot read the versioning status: {}", e.line),
            "allow the daemon's role s3:GetBucketVersioning on the bucket",
        ),
    }
}

/// What the delete probe was answered: the entry deleted (`Ok(None)`), refused (its code and
/// message), or the request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteProbe {
    /// The key it named: unique, never written, so nothing can be deleted.
    pub key: String,
    pub answer: Result<Option<(String, String)>, CallError>,
}

/// `target.delete`: DeleteObjects of a version that does not exist, in the purge's scope, is
/// accepted, so the permissions a purge's deletes need are there (S3 checks them before it
/// looks for the version).
pub fn target_delete(bucket: &str, p: &DeleteProbe) -> Check {
    let c = CheckId::TargetDelete;
    let resource = format!("s3://{bucket}/{}", p.key);
    let fix = format!(
        "allow the daemon's role s3:DeleteObjectVersion and s3:DeleteObject on arn:aws:s3:::{bucket}/* (its IAM policy and, across accounts, the bucket policy)"
    );
    match &p.answer {
        Ok(None) => Check::pass(
            c,
            resource,
            "DeleteObjects of a version that does not exist is accepted: purges may delete",
        ),
        Ok(Some((code, message))) => Check::fail(
            c,
            resource,
            format!("DeleteObjects refused the entry: {code}: {message}"),
            fix,
        ),
        Err(e) if e.kind == ErrorKind::AccessDenied => Check::fail(
            c,
            resource,
            format!("DeleteObjects was denied: {}", e.line),
            fix,
        ),
        Err(e) => Check::fail(
            c,
            resource,
            format!("DeleteObjects failed: {}", e.line),
            "check the target bucket's name and region, and the network path to S3",
        ),
    }
}
