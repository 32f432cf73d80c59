//! The DataSync task the daemon drives: start an execution with a date's include filter, read
//! its status, cancel it, and find an execution by its tags. Each call is counted in
//! `datasync_requests_total`, each failure in `aws_errors_total`.
//!
//! StartTaskExecution is sent with a single attempt: it has no idempotency token, so an SDK
//! retry after a timeout or a 5xx on a start DataSync accepted would start a second, untracked
//! execution. A failed start is instead reconciled by the caller: executions carry a start
//! token in their tags ([`DataSync::find_tagged`]).

use std::fmt;

use aws_sdk_datasync::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_datasync::operation::describe_task::DescribeTaskOutput;
use aws_sdk_datasync::types::{FilterRule, FilterType, TagListEntry, TaskExecutionStatus};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AwsError;
use super::Timed;
use crate::labels::{DataSyncOp, ErrorKind};
use crate::metrics::Metrics;

/// The single include rule for one filter value.
pub(crate) fn include_rule(filter: &str) -> FilterRule {
    FilterRule::builder()
        .filter_type(FilterType::SimplePattern)
        .value(filter)
        .build()
}

/// The last status seen for an execution, as DataSync spells it (`STARTED` is ours: started,
/// not yet described).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecStatus {
    Started,
    Queued,
    Launching,
    Preparing,
    Transferring,
    Verifying,
    Cancelling,
    Success,
    Error,
    /// A status this build does not know; treated as still running.
    Unknown(String),
}

impl ExecStatus {
    const KNOWN: [(ExecStatus, &'static str); 9] = [
        (ExecStatus::Started, "STARTED"),
        (ExecStatus::Queued, "QUEUED"),
        (ExecStatus::Launching, "LAUNCHING"),
        (ExecStatus::Preparing, "PREPARING"),
        (ExecStatus::Transferring, "TRANSFERRING"),
        (ExecStatus::Verifying, "VERIFYING"),
        (ExecStatus::Cancelling, "CANCELLING"),
        (ExecStatus::Success, "SUCCESS"),
        (ExecStatus::Error, "ERROR"),
    ];

    pub fn parse(s: &str) -> ExecStatus {
        Self::KNOWN
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(st, _)| st.clone())
            .unwrap_or_else(|| ExecStatus::Unknown(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            ExecStatus::Unknown(s) => s,
            known => Self::KNOWN
                .iter()
                .find(|(st, _)| st == known)
                .map_or("UNKNOWN", |(_, name)| name),
        }
    }

    /// The execution ended (and so no longer holds the task).
    pub fn ended(&self) -> bool {
        matches!(self, ExecStatus::Success | ExecStatus::Error)
    }
}

impl fmt::Display for ExecStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ExecStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ExecStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ExecStatus::parse(&String::deserialize(d)?))
    }
}

/// Where an execution stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub status: ExecStatus,
    /// On ERROR: DataSync's error code and detail.
    pub error: Option<(String, String)>,
    pub files_transferred: i64,
    pub bytes_transferred: i64,
    /// When it was started (queued, possibly).
    pub started_at: Option<DateTime<Utc>>,
    /// When it actually began, after any wait in the task's queue: the timeout counts from
    /// here.
    pub launched_at: Option<DateTime<Utc>>,
}

/// The DataSync task the daemon drives.
#[derive(Clone, Debug)]
pub struct DataSync {
    client: aws_sdk_datasync::Client,
    pub task_arn: String,
    metrics: Metrics,
}

impl DataSync {
    pub fn new(client: aws_sdk_datasync::Client, task_arn: &str, metrics: Metrics) -> Self {
        DataSync {
            client,
            task_arn: task_arn.to_string(),
            metrics,
        }
    }

    /// A failed call, counted.
    fn failed<E>(&self, op: DataSyncOp, resource: &str, e: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        super::counted(&self.metrics, AwsError::from_sdk(op.into(), resource, e))
    }

    fn answer_lacks(&self, op: DataSyncOp, resource: &str, what: &str) -> AwsError {
        super::counted(
            &self.metrics,
            AwsError::in_response(
                op.into(),
                resource,
                ErrorKind::Other,
                None,
                format!("the response carried no {what}"),
            ),
        )
    }

    /// Replaces the task's own Includes (`filter_mode = "task"`).
    pub async fn set_includes(&self, filter: &str) -> Result<(), AwsError> {
        self.client
            .update_task()
            .task_arn(&self.task_arn)
            .includes(include_rule(filter))
            .send()
            .timed(&self.metrics, DataSyncOp::UpdateTask)
            .await
            .map(|_| ())
            .map_err(|e| self.failed(DataSyncOp::UpdateTask, &self.task_arn, e))
    }

    /// Starts an execution, with `filter` as its Includes override when given, and `tags`.
    /// One attempt: see the module's doc.
    pub async fn start(
        &self,
        filter: Option<&str>,
        tags: &[(&str, String)],
    ) -> Result<String, AwsError> {
        let task = &self.task_arn;
        let op = DataSyncOp::StartTaskExecution;
        let mut req = self.client.start_task_execution().task_arn(task);
        for (k, v) in tags {
            let tag = TagListEntry::builder()
                .key(*k)
                .value(v.clone())
                .build()
                .map_err(|e| {
                    AwsError::in_response(op.into(), task, ErrorKind::Invalid, None, e.to_string())
                })?;
            req = req.tags(tag);
        }
        if let Some(f) = filter {
            req = req.includes(include_rule(f));
        }
        let out = req
            .customize()
            .config_override(aws_sdk_datasync::config::Builder::default().retry_config(
                aws_sdk_datasync::config::retry::RetryConfig::standard().with_max_attempts(1),
            ))
            .send()
            .timed(&self.metrics, op)
            .await
            .map_err(|e| self.failed(op, task, e))?;
        out.task_execution_arn()
            .map(str::to_string)
            .ok_or_else(|| self.answer_lacks(op, task, "TaskExecutionArn"))
    }

    /// Reads an execution's status.
    pub async fn describe(&self, execution_arn: &str) -> Result<Execution, AwsError> {
        let op = DataSyncOp::DescribeTaskExecution;
        let out = self
            .client
            .describe_task_execution()
            .task_execution_arn(execution_arn)
            .send()
            .timed(&self.metrics, op)
            .await
            .map_err(|e| self.failed(op, execution_arn, e))?;
        let status = match out.status() {
            Some(TaskExecutionStatus::Success) => ExecStatus::Success,
            Some(TaskExecutionStatus::Error) => ExecStatus::Error,
            Some(s) => ExecStatus::parse(s.as_str()),
            None => ExecStatus::Unknown(String::new()),
        };
        let error = (status == ExecStatus::Error).then(|| {
            let r = out.result();
            (
                r.and_then(|r| r.error_code())
                    .unwrap_or("unknown")
                    .to_string(),
                r.and_then(|r| r.error_detail())
                    .unwrap_or("no detail given")
                    .to_string(),
            )
        });
        Ok(Execution {
            status,
            error,
            files_transferred: out.files_transferred(),
            bytes_transferred: out.bytes_transferred(),
            started_at: out.start_time().and_then(super::s3::to_chrono),
            launched_at: out.launch_time().and_then(super::s3::to_chrono),
        })
    }

    /// The task as DataSync describes it (its locations, options, filters, schedule).
    pub async fn describe_task(&self) -> Result<DescribeTaskOutput, AwsError> {
        let op = DataSyncOp::DescribeTask;
        self.client
            .describe_task()
            .task_arn(&self.task_arn)
            .send()
            .timed(&self.metrics, op)
            .await
            .map_err(|e| self.failed(op, &self.task_arn, e))
    }

    /// An S3 location's URI (`s3://bucket/subdirectory/`).
    pub async fn location_uri(&self, location_arn: &str) -> Result<String, AwsError> {
        let op = DataSyncOp::DescribeLocationS3;
        self.client
            .describe_location_s3()
            .location_arn(location_arn)
            .send()
            .timed(&self.metrics, op)
            .await
            .map(|o| o.location_uri().unwrap_or_default().to_string())
            .map_err(|e| self.failed(op, location_arn, e))
    }

    /// The task's execution under way, if any: DescribeTask's CurrentTaskExecutionArn, when
    /// that execution has not ended.
    pub async fn current_execution(&self) -> Result<Option<String>, AwsError> {
        let out = self.describe_task().await?;
        let Some(arn) = out.current_task_execution_arn().filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let ex = self.describe(arn).await?;
        Ok((!ex.status.ended()).then(|| arn.to_string()))
    }

    /// Cancels an execution that ran past `sync.timeout`, so the task is free again.
    pub async fn cancel(&self, execution_arn: &str) -> Result<(), AwsError> {
        let op = DataSyncOp::CancelTaskExecution;
        self.client
            .cancel_task_execution()
            .task_execution_arn(execution_arn)
            .send()
            .timed(&self.metrics, op)
            .await
            .map(|_| ())
            .map_err(|e| self.failed(op, execution_arn, e))
    }

    /// Every execution of the task, with its status (all pages).
    pub async fn executions(&self) -> Result<Vec<(String, ExecStatus)>, AwsError> {
        let op = DataSyncOp::ListTaskExecutions;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_task_executions()
                .task_arn(&self.task_arn)
                .set_next_token(token.take())
                .send()
                .timed(&self.metrics, op)
                .await
                .map_err(|e| self.failed(op, &self.task_arn, e))?;
            for e in page.task_executions() {
                if let Some(arn) = e.task_execution_arn() {
                    let status = e.status().map_or(ExecStatus::Unknown(String::new()), |s| {
                        ExecStatus::parse(s.as_str())
                    });
                    out.push((arn.to_string(), status));
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// An execution's tags.
    pub async fn tags(&self, execution_arn: &str) -> Result<Vec<(String, String)>, AwsError> {
        let op = DataSyncOp::ListTagsForResource;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_tags_for_resource()
                .resource_arn(execution_arn)
                .set_next_token(token.take())
                .send()
                .timed(&self.metrics, op)
                .await
                .map_err(|e| self.failed(op, execution_arn, e))?;
            out.extend(page.tags().iter().map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// The task's execution tagged `key = value` that did not end in ERROR, if one exists,
    /// with its status. Skips the executions in `known` (their tags are known already) and
    /// those that ended in ERROR (without reading their tags: the answer would not change).
    pub async fn find_tagged(
        &self,
        key: &str,
        value: &str,
        known: &[&str],
    ) -> Result<Option<(String, ExecStatus)>, AwsError> {
        for (arn, status) in self.executions().await? {
            if known.contains(&arn.as_str()) || status == ExecStatus::Error {
                continue;
            }
            if self
                .tags(&arn)
                .await?
                .iter()
                .any(|(k, v)| k == key && v == value)
            {
                return Ok(Some((arn, status)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_wire_spelling() {
        for s in [
            "STARTED",
            "TRANSFERRING",
            "SUCCESS",
            "ERROR",
            "SOMETHING_NEW",
        ] {
            let st = ExecStatus::parse(s);
            assert_eq!(st.as_str(), s);
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(ExecStatus::parse("SUCCESS"), ExecStatus::Success);
        assert!(ExecStatus::Error.ended() && !ExecStatus::Queued.ended());
    }
}
