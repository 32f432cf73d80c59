//! The DataSync task's verdicts: the task, its locations, schedule, filters and options.

use super::check::{CallError, Check};
use crate::config::{FilterMode, normalized_subdirectory};
use crate::labels::CheckId;

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
