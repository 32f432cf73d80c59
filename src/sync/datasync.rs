//! DataSync calls: start an execution with the day's include filter, and read its status.

use aws_sdk_datasync::types::{FilterRule, FilterType, TagListEntry, TaskExecutionStatus};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::NaiveDate;

use crate::config::FilterMode;

#[derive(Debug, thiserror::Error)]
pub enum DataSyncError {
    #[error("UpdateTask {task_arn}: {reason}")]
    Update { task_arn: String, reason: String },
    #[error("StartTaskExecution {task_arn}: {reason}")]
    Start { task_arn: String, reason: String },
    #[error("DescribeTaskExecution {execution_arn}: {reason}")]
    Describe {
        execution_arn: String,
        reason: String,
    },
    #[error("CancelTaskExecution {execution_arn}: {reason}")]
    Cancel {
        execution_arn: String,
        reason: String,
    },
    #[error("building request: {0}")]
    Build(String),
}

/// The single include rule for one filter value.
pub fn include_rule(filter: &str) -> Result<FilterRule, DataSyncError> {
    Ok(FilterRule::builder()
        .filter_type(FilterType::SimplePattern)
        .value(filter)
        .build())
}

/// Where an execution stands, reduced to what the runner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Running(String),
    Success,
    Error {
        code: String,
        detail: String,
    },
    /// A status this build does not know; treated as still running.
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionStatus {
    pub phase: Phase,
    pub raw: String,
    pub files_transferred: i64,
    pub bytes_transferred: i64,
}

/// Starts an execution for `filter`. In `task` mode the task's own Includes are updated first.
pub async fn start(
    client: &aws_sdk_datasync::Client,
    task_arn: &str,
    mode: FilterMode,
    filter: &str,
    date: NaiveDate,
    chunk: (usize, usize),
) -> Result<String, DataSyncError> {
    let rule = include_rule(filter)?;
    if mode == FilterMode::Task {
        client
            .update_task()
            .task_arn(task_arn)
            .includes(rule.clone())
            .send()
            .await
            .map_err(|e| DataSyncError::Update {
                task_arn: task_arn.into(),
                reason: DisplayErrorContext(&e).to_string(),
            })?;
    }
    let tag = |k: &str, v: String| {
        TagListEntry::builder()
            .key(k)
            .value(v)
            .build()
            .map_err(|e| DataSyncError::Build(e.to_string()))
    };
    let mut req = client
        .start_task_execution()
        .task_arn(task_arn)
        .tags(tag("s3-reconciler:partition-date", date.to_string())?)
        .tags(tag(
            "s3-reconciler:chunk",
            format!("{}/{}", chunk.0, chunk.1),
        )?);
    if mode == FilterMode::Execution {
        req = req.includes(rule);
    }
    let out = req.send().await.map_err(|e| DataSyncError::Start {
        task_arn: task_arn.into(),
        reason: DisplayErrorContext(&e).to_string(),
    })?;
    out.task_execution_arn()
        .map(str::to_string)
        .ok_or_else(|| DataSyncError::Start {
            task_arn: task_arn.into(),
            reason: "response carried no TaskExecutionArn".into(),
        })
}

/// Reads an execution's status.
pub async fn describe(
    client: &aws_sdk_datasync::Client,
    execution_arn: &str,
) -> Result<ExecutionStatus, DataSyncError> {
    let out = client
        .describe_task_execution()
        .task_execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| DataSyncError::Describe {
            execution_arn: execution_arn.into(),
            reason: DisplayErrorContext(&e).to_string(),
        })?;
    let raw = out
        .status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let phase = match out.status() {
        Some(TaskExecutionStatus::Success) => Phase::Success,
        Some(TaskExecutionStatus::Error) => {
            let r = out.result();
            Phase::Error {
                code: r
                    .and_then(|r| r.error_code())
                    .unwrap_or("unknown")
                    .to_string(),
                detail: r
                    .and_then(|r| r.error_detail())
                    .unwrap_or("no detail given")
                    .to_string(),
            }
        }
        Some(
            TaskExecutionStatus::Queued
            | TaskExecutionStatus::Launching
            | TaskExecutionStatus::Preparing
            | TaskExecutionStatus::Transferring
            | TaskExecutionStatus::Verifying
            | TaskExecutionStatus::Cancelling,
        ) => Phase::Running(raw.clone()),
        _ => Phase::Unknown(raw.clone()),
    };
    Ok(ExecutionStatus {
        phase,
        raw,
        files_transferred: out.files_transferred(),
        bytes_transferred: out.bytes_transferred(),
    })
}

/// Cancels an execution that ran past `sync.timeout`, so the task is free for the next attempt.
pub async fn cancel(
    client: &aws_sdk_datasync::Client,
    execution_arn: &str,
) -> Result<(), DataSyncError> {
    client
        .cancel_task_execution()
        .task_execution_arn(execution_arn)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| DataSyncError::Cancel {
            execution_arn: execution_arn.into(),
            reason: DisplayErrorContext(&e).to_string(),
        })
}
