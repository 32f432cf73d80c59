//! The purge queue's SQS calls (the consumer's, the doctor's look at its attributes, the depth
//! of its dead-letter queue). Each is counted and timed in `aws_requests_total` and
//! `aws_request_duration_seconds`, each failure in `aws_request_errors_total`.

use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::AwsError;
use super::Timed;
use crate::labels::SqsOp;
use crate::metrics::Metrics;

/// SQS's limit on messages per receive and entries per batch call.
pub const SQS_MAX_BATCH: usize = 10;

/// A queue's attributes, as the doctor reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFacts {
    pub arn: Option<String>,
    pub redrive_policy: Option<String>,
    /// Seconds.
    pub visibility_timeout: Option<u64>,
}

/// The purge queue.
#[derive(Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    pub url: String,
    metrics: Metrics,
}

impl Queue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>, metrics: Metrics) -> Self {
        Queue {
            client,
            url: url.into(),
            metrics,
        }
    }

    fn failed<E>(&self, operation: SqsOp, e: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        super::counted(
            &self.metrics,
            AwsError::from_sdk(operation.into(), &self.url, e),
        )
    }

    /// Long-polls for up to `max` messages (at most 10).
    pub async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Message>, AwsError> {
        self.client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, SQS_MAX_BATCH) as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .visibility_timeout(visibility.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .timed(&self.metrics, SqsOp::ReceiveMessage)
            .await
            .map(|out| out.messages.unwrap_or_default())
            .map_err(|e| self.failed(SqsOp::ReceiveMessage, e))
    }

    /// Deletes up to 10 messages by receipt handle; returns how many the queue refused.
    pub(crate) async fn delete_batch(&self, receipts: &[&str]) -> Result<usize, AwsError> {
        let entries: Vec<_> = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*r)
                    .build()
                    .ok()
            })
            .collect();
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .timed(&self.metrics, SqsOp::DeleteMessageBatch)
            .await
            .map_err(|e| self.failed(SqsOp::DeleteMessageBatch, e))?;
        for f in out.failed() {
            warn!(entry = %f.id(), code = %f.code(), "DeleteMessageBatch entry failed; the message will be redelivered");
        }
        Ok(out.failed().len())
    }

    /// Sets the visibility timeout of up to 10 messages (receipt, timeout each); returns how
    /// many the queue refused.
    pub(crate) async fn change_visibility_batch(
        &self,
        entries: &[(&str, Duration)],
    ) -> Result<usize, AwsError> {
        let entries: Vec<_> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, (r, d))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*r)
                    .visibility_timeout(d.as_secs().min(43_200) as i32)
                    .build()
                    .ok()
            })
            .collect();
        let out = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .timed(&self.metrics, SqsOp::ChangeMessageVisibilityBatch)
            .await
            .map_err(|e| self.failed(SqsOp::ChangeMessageVisibilityBatch, e))?;
        for f in out.failed() {
            warn!(entry = %f.id(), code = %f.code(), "could not change a message's visibility");
        }
        Ok(out.failed().len())
    }

    /// The queue's RedrivePolicy, if it has one.
    pub(crate) async fn redrive_policy(&self) -> Result<Option<String>, AwsError> {
        let name = QueueAttributeName::RedrivePolicy;
        Ok(self
            .attributes(std::slice::from_ref(&name))
            .await?
            .remove(&name))
    }

    /// The queue's ApproximateNumberOfMessages (visible messages, as SQS estimates them).
    pub(crate) async fn approximate_messages(&self) -> Result<u64, AwsError> {
        let name = QueueAttributeName::ApproximateNumberOfMessages;
        let value = self
            .attributes(std::slice::from_ref(&name))
            .await?
            .remove(&name);
        value
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                super::counted(
                    &self.metrics,
                    AwsError::in_response(
                        SqsOp::GetQueueAttributes.into(),
                        &self.url,
                        crate::labels::ErrorKind::Invalid,
                        None,
                        format!("ApproximateNumberOfMessages is {value:?}, not a count"),
                    ),
                )
            })
    }

    /// What the doctor checks: the queue's ARN, RedrivePolicy and VisibilityTimeout.
    pub async fn facts(&self) -> Result<QueueFacts, AwsError> {
        use QueueAttributeName::{QueueArn, RedrivePolicy, VisibilityTimeout};
        let mut got = self
            .attributes(&[QueueArn, RedrivePolicy, VisibilityTimeout])
            .await?;
        Ok(QueueFacts {
            arn: got.remove(&QueueArn),
            redrive_policy: got.remove(&RedrivePolicy),
            visibility_timeout: got.remove(&VisibilityTimeout).and_then(|v| v.parse().ok()),
        })
    }

    /// One GetQueueAttributes call for `names`: the attributes the queue answered.
    async fn attributes(
        &self,
        names: &[QueueAttributeName],
    ) -> Result<std::collections::HashMap<QueueAttributeName, String>, AwsError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .timed(&self.metrics, SqsOp::GetQueueAttributes)
            .await
            .map_err(|e| self.failed(SqsOp::GetQueueAttributes, e))?;
        Ok(out.attributes.unwrap_or_default())
    }

    /// Keeps `receipts` invisible while their work goes on: every half `visibility`, their
    /// visibility is reset to `visibility` from now, until `done` is cancelled. Without this,
    /// work that outlives the timeout would be received and done twice at once.
    pub async fn keep_invisible(
        &self,
        receipts: Vec<String>,
        visibility: Duration,
        done: CancellationToken,
    ) {
        let half = visibility / 2;
        loop {
            if done
                .run_until_cancelled(tokio::time::sleep(half))
                .await
                .is_none()
            {
                return;
            }
            for chunk in receipts.chunks(SQS_MAX_BATCH) {
                let entries: Vec<(&str, Duration)> =
                    chunk.iter().map(|r| (r.as_str(), visibility)).collect();
                match self.change_visibility_batch(&entries).await {
                    Ok(0) => debug!(messages = chunk.len(), "visibility extended"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "could not extend visibility"),
                }
            }
        }
    }
}
