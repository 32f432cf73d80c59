//! DataSync calls: start an execution with a date's include filter, read its status, cancel it.

use aws_sdk_datasync::types::{FilterRule, FilterType, TagListEntry, TaskExecutionStatus};
use chrono::{DateTime, NaiveDate, Utc};

use super::claim::ExecStatus;
use crate::aws::AwsError;
use crate::config::FilterMode;
use crate::labels::{ErrorKind, Service};
use crate::metrics::Metrics;

/// The single include rule for one filter value.
pub(crate) fn include_rule(filter: &str) -> FilterRule {
    FilterRule::builder()
        .filter_type(FilterType::SimplePattern)
        .value(filter)
        .build()
}

/// Where an execution stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub status: ExecStatus,
    /// On ERROR: DataSync's error code and detail.
    pub error: Option<(String, String)>,
    pub files_transferred: i64,
    pub bytes_transferred: i64,
    /// When DataSync started it; the timeout counts from here, so a resumed watch does not
    /// restart the clock.
    pub started_at: Option<DateTime<Utc>>,
}

/// The DataSync task the daemon drives.
#[derive(Clone, Debug)]
pub struct DataSync {
    client: aws_sdk_datasync::Client,
    task_arn: String,
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

    fn failed(&self, e: AwsError) -> AwsError {
        self.metrics.aws_error(Service::DataSync, e.kind);
        e
    }

    /// Starts an execution for `filter`. In `task` mode the task's own Includes are updated
    /// first; in `execution` mode the filter is the execution's Includes override.
    pub async fn start(
        &self,
        mode: FilterMode,
        filter: &str,
        date: NaiveDate,
        chunk: (usize, usize),
    ) -> Result<String, AwsError> {
        let task = &self.task_arn;
        let rule = include_rule(filter);
        if mode == FilterMode::Task {
            self.client
                .update_task()
                .task_arn(task)
                .includes(rule.clone())
                .send()
                .await
                .map_err(|e| {
                    self.failed(AwsError::from_sdk(Service::DataSync, "UpdateTask", task, e))
                })?;
        }
        let tag = |k: &str, v: String| TagListEntry::builder().key(k).value(v).build();
        let mut req = self.client.start_task_execution().task_arn(task);
        for t in [
            tag("s3-reconciler:partition-date", date.to_string()),
            tag("s3-reconciler:chunk", format!("{}/{}", chunk.0, chunk.1)),
        ] {
            req = req.tags(t.map_err(|e| {
                AwsError::in_response(
                    Service::DataSync,
                    "StartTaskExecution",
                    task,
                    ErrorKind::Invalid,
                    None,
                    e.to_string(),
                )
            })?);
        }
        if mode == FilterMode::Execution {
            req = req.includes(rule);
        }
        let out = req.send().await.map_err(|e| {
            self.failed(AwsError::from_sdk(
                Service::DataSync,
                "StartTaskExecution",
                task,
                e,
            ))
        })?;
        out.task_execution_arn().map(str::to_string).ok_or_else(|| {
            self.failed(AwsError::in_response(
                Service::DataSync,
                "StartTaskExecution",
                task,
                ErrorKind::Other,
                None,
                "response carried no TaskExecutionArn",
            ))
        })
    }

    /// Reads an execution's status.
    pub async fn describe(&self, execution_arn: &str) -> Result<Execution, AwsError> {
        let out = self
            .client
            .describe_task_execution()
            .task_execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| {
                self.failed(AwsError::from_sdk(
                    Service::DataSync,
                    "DescribeTaskExecution",
                    execution_arn,
                    e,
                ))
            })?;
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
            started_at: out.start_time().and_then(crate::aws::s3::to_chrono),
        })
    }

    /// Cancels an execution that ran past `sync.timeout`, so the task is free again.
    pub async fn cancel(&self, execution_arn: &str) -> Result<(), AwsError> {
        self.client
            .cancel_task_execution()
            .task_execution_arn(execution_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                self.failed(AwsError::from_sdk(
                    Service::DataSync,
                    "CancelTaskExecution",
                    execution_arn,
                    e,
                ))
            })
    }
}
