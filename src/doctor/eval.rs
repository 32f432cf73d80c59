//! The checks' verdicts, without I/O: facts in (what AWS answered), a [`Check`] out.

use serde::Serialize;

use crate::aws::s3::{LifecycleRule, ReplicationRule};
use crate::config::{FilterMode, RemovalEventName, normalized_subdirectory, strip_s3_prefix};
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
    let to_target = |r: &&ReplicationRule| {
        r.enabled && r.destination.trim_start_matches("arn:aws:s3:::") == target
    };
    let uncovered: Vec<&String> = scope
        .iter()
        .filter(|p| {
            !rules
                .iter()
                .filter(to_target)
                .any(|r| r.prefix.as_deref().is_some_and(|rp| p.starts_with(rp)))
        })
        .collect();
    if uncovered.is_empty() {
        Check::pass(
            CheckId::SourceReplication,
            resource,
            format!("replication to s3://{target} covers purge.prefixes"),
        )
    } else {
        Check::fail(
            CheckId::SourceReplication,
            resource,
            format!(
                "no enabled replication rule to s3://{target} covers {}",
                uncovered
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fix,
        )
    }
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

/// Where a bucket notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Queue,
    Topic,
    Lambda,
}

/// One notification configuration of the source bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub destination: Destination,
    pub arn: String,
    pub id: Option<String>,
    /// As configured: `s3:ObjectRemoved:*`, `s3:ObjectRemoved:Delete`...
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// Whether a configured event name (`s3:ObjectRemoved:*`) includes `wanted`.
fn covers(configured: &str, wanted: RemovalEventName) -> bool {
    let configured = strip_s3_prefix(configured);
    match configured.strip_suffix(":*") {
        Some(family) => wanted.as_str().split(':').next() == Some(family),
        None => configured == wanted.as_str(),
    }
}

/// Whether a notification's key filter lets every key of `prefixes` through.
fn filter_covers(n: &Notification, prefixes: &[String]) -> bool {
    let p = n.prefix.as_deref().unwrap_or("");
    if prefixes.is_empty() {
        p.is_empty()
    } else {
        prefixes.iter().all(|q| q.starts_with(p))
    }
}

/// `source.notification`: the purge events reach the queue (or EventBridge is on), and
/// nothing else takes the same events.
pub fn notification(
    bucket: &str,
    facts: Result<(Vec<Notification>, bool), CallError>,
    queue_arn: Option<&str>,
    events: &[RemovalEventName],
    prefixes: &[String],
) -> Check {
    let c = CheckId::SourceNotification;
    let resource = format!("s3://{bucket}");
    let (configs, eventbridge) = match facts {
        Ok(f) => f,
        Err(e) => {
            return Check::fail(
                c,
                resource,
                format!("cannot read the notification configuration: {}", e.line),
                "allow the daemon's role s3:GetBucketNotification on the source bucket",
            );
        }
    };
    let wanted: Vec<String> = events.iter().map(|e| format!("s3:{e}")).collect();
    let ours = |n: &&Notification| {
        n.destination == Destination::Queue && Some(n.arn.as_str()) == queue_arn
    };
    let mut missing = Vec::new();
    let mut suffixed = false;
    for e in events {
        let found: Vec<&Notification> = configs
            .iter()
            .filter(ours)
            .filter(|n| n.events.iter().any(|x| covers(x, *e)) && filter_covers(n, prefixes))
            .collect();
        if found.is_empty() {
            missing.push(format!("s3:{e}"));
        }
        suffixed |= !found.is_empty() && found.iter().all(|n| n.suffix.is_some());
    }
    let overlapping: Vec<String> = configs
        .iter()
        .filter(|n| !ours(n))
        .filter(|n| {
            n.events
                .iter()
                .any(|x| events.iter().any(|e| covers(x, *e)))
        })
        .map(|n| {
            format!(
                "{} {}{}",
                match n.destination {
                    Destination::Queue => "queue",
                    Destination::Topic => "topic",
                    Destination::Lambda => "function",
                },
                n.arn,
                n.id.as_ref()
                    .map(|i| format!(" (id {i})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let target = queue_arn.unwrap_or("the purge queue");
    if eventbridge {
        return Check::pass(
            c,
            resource,
            "EventBridge delivery is on: an EventBridge rule must route \"Object Deleted\" events to the queue",
        );
    }
    if !missing.is_empty() {
        let fix = format!(
            "add a queue notification for {} to {target}{} (deploy/cloudformation/source-account.yaml does)",
            missing.join(", "),
            if prefixes.is_empty() {
                String::new()
            } else {
                format!(" covering {}", prefixes.join(", "))
            }
        );
        let detail = match (queue_arn, overlapping.is_empty()) {
            (None, _) => {
                "the queue's ARN is unknown (queue.exists failed), so nothing can be matched"
                    .to_string()
            }
            (_, true) => format!("no notification sends {} to {target}", missing.join(", ")),
            (_, false) => format!(
                "no notification sends {} to {target}; they go to {}",
                missing.join(", "),
                overlapping.join(", ")
            ),
        };
        return Check::fail(c, resource, detail, fix);
    }
    if !overlapping.is_empty() {
        return Check::warn(
            c,
            resource,
            format!(
                "{} reach {target}, and also {}",
                wanted.join(", "),
                overlapping.join(", ")
            ),
            "remove the other notification (the seeds' purge Lambda, say): S3 rejects overlapping configurations when the stack is applied, and two consumers purge twice",
        );
    }
    if suffixed {
        return Check::warn(
            c,
            resource,
            format!(
                "{} reach {target} only for keys with a suffix filter",
                wanted.join(", ")
            ),
            "drop the suffix filter, or accept that other keys are never purged by events (the sweep still finds them)",
        );
    }
    Check::pass(c, resource, format!("{} reach {target}", wanted.join(", ")))
}

/// `queue.exists`.
pub(crate) fn queue_exists(queue_url: &str, arn: Result<String, CallError>) -> Check {
    match arn {
        Ok(arn) => Check::pass(CheckId::QueueExists, queue_url, format!("reachable: {arn}")),
        Err(e) => Check::fail(
            CheckId::QueueExists,
            queue_url,
            e.line.clone(),
            match e.kind {
                ErrorKind::NotFound => "check purge.queue_url (and the region of [control])",
                ErrorKind::AccessDenied => {
                    "allow the daemon's role sqs:GetQueueAttributes, sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on the queue"
                }
                _ => "check purge.queue_url, the network path to SQS, and the credentials",
            },
        ),
    }
}

/// `queue.redrive`: a dead-letter queue, and the visibility timeouts side by side.
pub(crate) fn queue_redrive(
    queue_url: &str,
    attributes: Result<(Option<String>, Option<u64>), CallError>,
    daemon_visibility: u64,
) -> Check {
    let c = CheckId::QueueRedrive;
    let (policy, visibility) = match attributes {
        Ok(a) => a,
        Err(e) => {
            return Check::fail(
                c,
                queue_url,
                format!("cannot read the queue's attributes: {}", e.line),
                "allow the daemon's role sqs:GetQueueAttributes on the queue",
            );
        }
    };
    let vis = visibility.map_or("unknown".into(), |v| format!("{v}s"));
    let Some(policy) = policy else {
        return Check::fail(
            c,
            queue_url,
            "no redrive policy: a message that can never be handled is received forever",
            "give the queue a dead-letter queue (RedrivePolicy with maxReceiveCount, e.g. 5)",
        );
    };
    let parsed: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
    let dlq = parsed["deadLetterTargetArn"].as_str().unwrap_or("?");
    let max = match &parsed["maxReceiveCount"] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let detail = format!(
        "dead-letter queue {dlq} after {max} receives; the queue's visibility timeout is {vis}, the daemon asks for {daemon_visibility}s on each receive"
    );
    if max == "1" {
        return Check::warn(
            c,
            queue_url,
            detail,
            "raise maxReceiveCount: with 1, a single throttled purge sends its message to the DLQ",
        );
    }
    Check::pass(c, queue_url, detail)
}

/// What DescribeTask said about the task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFacts {
    pub status: Option<String>,
    pub source_location: Option<String>,
    pub destination_location: Option<String>,
    pub schedule: Option<String>,
    pub schedule_enabled: Option<bool>,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub transfer_mode: Option<String>,
    /// Other options, `Name=VALUE`.
    pub options: Vec<String>,
}

/// `datasync.task`: it exists, can run, and lives where the daemon calls DataSync.
pub fn task(
    task_arn: &str,
    arn_region: &str,
    control_region: &str,
    facts: &Result<TaskFacts, CallError>,
) -> Check {
    let c = CheckId::DatasyncTask;
    if arn_region != control_region {
        return Check::fail(
            c,
            task_arn,
            format!("the task is in {arn_region}, but DataSync is called in {control_region}"),
            "set [control].region (or [source].region) to the task's region",
        );
    }
    match facts {
        Ok(f) => match f.status.as_deref() {
            Some(s @ ("AVAILABLE" | "RUNNING" | "QUEUED" | "CREATING")) => {
                Check::pass(c, task_arn, format!("task status {s}"))
            }
            other => Check::fail(
                c,
                task_arn,
                format!("task status {}", other.unwrap_or("unknown")),
                "fix the task in the DataSync console (an UNAVAILABLE task has a location or agent it cannot reach)",
            ),
        },
        Err(e) => Check::fail(
            c,
            task_arn,
            e.line.clone(),
            "check sync.task_arn, and allow the daemon's role datasync:DescribeTask on it",
        ),
    }
}

/// Bucket and subdirectory of a DataSync S3 location URI, `s3://bucket/sub/dir/`.
pub(crate) fn parse_location_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, sub) = rest.split_once('/').unwrap_or((rest, ""));
    Some((bucket.to_string(), normalized_subdirectory(sub)))
}

/// `datasync.locations`: both locations point where the configuration says.
pub fn locations(
    task_arn: &str,
    source_uri: Result<String, CallError>,
    destination_uri: Result<String, CallError>,
    source_bucket: &str,
    target_bucket: &str,
    subdirectory: &str,
) -> Check {
    let c = CheckId::DatasyncLocations;
    let want_sub = normalized_subdirectory(subdirectory);
    let mut wrong = Vec::new();
    let mut seen = Vec::new();
    for (side, uri, bucket) in [
        ("source", source_uri, source_bucket),
        ("destination", destination_uri, target_bucket),
    ] {
        match uri.as_ref().map(|u| (u.clone(), parse_location_uri(u))) {
            Ok((u, Some((b, sub)))) => {
                seen.push(format!("{side} {u}"));
                if b != bucket {
                    wrong.push(format!("the {side} location's bucket is {b}, not {bucket}"));
                }
                if sub != want_sub {
                    wrong.push(format!(
                        "the {side} location's subdirectory is {sub}, not sync.location_subdirectory {want_sub}"
                    ));
                }
            }
            Ok((u, None)) => wrong.push(format!("the {side} location is not an S3 location: {u}")),
            Err(e) => wrong.push(format!("cannot describe the {side} location: {}", e.line)),
        }
    }
    if wrong.is_empty() {
        return Check::pass(c, task_arn, seen.join(", "));
    }
    Check::fail(
        c,
        task_arn,
        format!(
            "{}: every execution would succeed with 0 files",
            wrong.join("; ")
        ),
        "point the task's locations at source.bucket and target.bucket with subdirectory sync.location_subdirectory (or fix the configuration to match them)",
    )
}

/// `datasync.schedule`: the task has no schedule of its own that would run unfiltered.
pub fn schedule(task_arn: &str, facts: &TaskFacts, mode: FilterMode) -> Check {
    let c = CheckId::DatasyncSchedule;
    let Some(expr) = &facts.schedule else {
        return Check::pass(
            c,
            task_arn,
            "no schedule of its own: the daemon starts every execution",
        );
    };
    if facts.schedule_enabled == Some(false) {
        return Check::pass(c, task_arn, format!("schedule {expr} is disabled"));
    }
    let fix = "remove the task's schedule (the daemon runs it on sync.schedule): aws datasync update-task --task-arn ARN --schedule ScheduleExpression=\"\"";
    match mode {
        FilterMode::Execution => Check::fail(
            c,
            task_arn,
            format!(
                "the task runs on its own schedule {expr}, with no Includes: a scheduled run copies everything"
            ),
            fix,
        ),
        FilterMode::Task => Check::warn(
            c,
            task_arn,
            format!("the task runs on its own schedule {expr}, again with the last day's Includes"),
            fix,
        ),
    }
}

/// `datasync.filters`: the task's own filters, which apply to every execution.
pub fn filters(task_arn: &str, facts: &TaskFacts, mode: FilterMode) -> Check {
    let c = CheckId::DatasyncFilters;
    let excludes = if facts.excludes.is_empty() {
        "no Excludes".to_string()
    } else {
        format!("Excludes {}", facts.excludes.join(" | "))
    };
    if mode == FilterMode::Execution && !facts.includes.is_empty() {
        return Check::warn(
            c,
            task_arn,
            format!(
                "the task has Includes of its own ({}); {excludes}",
                facts.includes.join(" | ")
            ),
            "clear the task's Includes: each execution overrides them, but a run started anywhere else uses them",
        );
    }
    if !facts.excludes.is_empty() {
        return Check::warn(
            c,
            task_arn,
            format!("{excludes}: they apply to every execution and can leave partitions uncopied"),
            "make sure no Exclude matches the partitions (sync verification reports what they leave out)",
        );
    }
    Check::pass(c, task_arn, format!("no Includes of its own; {excludes}"))
}

/// `datasync.options`: `TransferMode` CHANGED, the rest listed.
pub fn options(task_arn: &str, facts: &TaskFacts) -> Check {
    let c = CheckId::DatasyncOptions;
    let others = match facts.options.is_empty() {
        true => String::new(),
        false => format!("; {}", facts.options.join(", ")),
    };
    match facts.transfer_mode.as_deref() {
        Some("CHANGED") => Check::pass(c, task_arn, format!("TransferMode CHANGED{others}")),
        None => Check::pass(
            c,
            task_arn,
            format!("TransferMode not set (DataSync's default, CHANGED){others}"),
        ),
        Some(m) => Check::warn(
            c,
            task_arn,
            format!("TransferMode {m}: lookback re-syncs copy every object again{others}"),
            "set TransferMode CHANGED so that re-synced partitions copy only what changed",
        ),
    }
}

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
    if let Err(e) = &p.write {
        return Check::fail(
            c,
            resource,
            format!("cannot write a claim: {}", e.line),
            format!(
                "allow the daemon's role s3:PutObject and s3:GetObject on s3://{bucket}/{prefix}*"
            ),
        );
    }
    match &p.conditional_refused {
        Ok(true) => {}
        Ok(false) => {
            return Check::fail(
                c,
                resource,
                "a create-if-absent write (If-None-Match: *) over an existing object succeeded: this store ignores conditional writes, so two replicas could both claim a date",
                "use an S3 bucket (or a store that honours If-None-Match and If-Match) for state.bucket",
            );
        }
        Err(e) => {
            return Check::fail(
                c,
                resource,
                format!("conditional write failed: {}", e.line),
                "allow the daemon's role s3:PutObject on the prefix",
            );
        }
    }
    match &p.read_back {
        Ok(true) => {}
        Ok(false) => {
            return Check::fail(
                c,
                resource,
                "the probe read back different from what was written",
                "check for another writer or a caching proxy in front of the bucket",
            );
        }
        Err(e) => {
            return Check::fail(
                c,
                resource,
                format!("cannot read a claim back: {}", e.line),
                format!("allow the daemon's role s3:GetObject on s3://{bucket}/{prefix}*"),
            );
        }
    }
    match &p.missing {
        Ok(()) => Check::pass(
            c,
            resource,
            "claims are written conditionally, read back, and a missing one reads as not found",
        ),
        Err(e) if e.kind == ErrorKind::AccessDenied => Check::fail(
            c,
            resource,
            "reading a claim that does not exist answers AccessDenied, not NotFound: S3 hides existence from callers that may not list the bucket, so the first sync of every date would fail",
            format!(
                "allow the daemon's role s3:ListBucket on arn:aws:s3:::{bucket} (no s3:prefix condition: S3 checks it without one)"
            ),
        ),
        Err(e) => Check::fail(
            c,
            resource,
            format!("reading a missing claim failed: {}", e.line),
            "check the state bucket's policy",
        ),
    }
}

#[cfg(test)]
mod tests;
