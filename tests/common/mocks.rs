//! aws-smithy-mocks fixtures: clients that answer only what a test is about, a queue that
//! delivers given messages once and records what became of them, and SDK shapes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::types::{DeleteMarkerEntry, ObjectVersion};
use aws_sdk_sqs::operation::change_message_visibility_batch::ChangeMessageVisibilityBatchOutput;
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime as SmithyTime;
use s3_reconciler::config::Config;

use super::REGION;

pub const QUEUE: &str = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/deletes";
pub const TASK: &str = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0";
pub const EXEC: &str = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0/execution/exec-0bc08d054f39be4db";

pub fn s3_client(rules: &[&Rule]) -> aws_sdk_s3::Client {
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |c| c.retry_config(
        aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(2)
    ))
}

pub fn sqs_client(rules: &[&Rule]) -> aws_sdk_sqs::Client {
    mock_client!(aws_sdk_sqs, RuleMode::MatchAny, rules)
}

pub fn datasync_client(rules: &[&Rule]) -> aws_sdk_datasync::Client {
    mock_client!(aws_sdk_datasync, RuleMode::MatchAny, rules)
}

pub fn purge_config() -> Config {
    let mut c = Config::default();
    c.source.bucket = "src-bucket".into();
    c.source.account.region = REGION.into();
    c.target = c.source.clone();
    c.target.bucket = "tgt-bucket".into();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.shutdown.grace = Duration::from_secs(5);
    c.purge.enabled = true;
    c.purge.queue_url = QUEUE.into();
    c.purge.wait_time = Duration::from_secs(1);
    c.purge.retry_backoff = Duration::from_secs(7);
    c.purge.retry_backoff_max = Duration::from_secs(60);
    c.readiness.max_consecutive_failures = std::num::NonZeroU32::new(1).unwrap();
    // The mocks answer only what each test is about; tests/doctor.rs covers the checks.
    c.preflight.enabled = false;
    c
}

pub fn old() -> SmithyTime {
    SmithyTime::from_secs(1_700_000_000)
}

pub fn version(key: &str, id: &str) -> ObjectVersion {
    ObjectVersion::builder()
        .key(key)
        .version_id(id)
        .last_modified(old())
        .build()
}

pub fn marker(key: &str, id: &str) -> DeleteMarkerEntry {
    DeleteMarkerEntry::builder()
        .key(key)
        .version_id(id)
        .last_modified(old())
        .build()
}

pub fn message(id: &str, body: String) -> Message {
    Message::builder()
        .message_id(id)
        .receipt_handle(format!("receipt-{id}"))
        .body(body)
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
        .build()
}

/// What the consumer did with its messages.
#[derive(Default, Debug)]
pub struct Settled {
    pub acked: Vec<String>,
    pub retried: Vec<(String, i32)>,
}

/// An SQS client that delivers `messages` once, then nothing, and records acknowledgements and
/// retry delays.
pub fn queue(messages: Vec<Message>, settled: Arc<Mutex<Settled>>) -> aws_sdk_sqs::Client {
    let first = mock!(aws_sdk_sqs::Client::receive_message)
        .sequence()
        .output(move || {
            ReceiveMessageOutput::builder()
                .set_messages(Some(messages.clone()))
                .build()
        })
        .output(|| {
            // An idle long poll: nothing arrives for a while.
            std::thread::sleep(Duration::from_millis(50));
            ReceiveMessageOutput::builder().build()
        })
        .repeatedly()
        .build();
    let (s1, s2) = (settled.clone(), settled);
    let delete = mock!(aws_sdk_sqs::Client::delete_message_batch).then_compute_output(move |req| {
        for e in req.entries() {
            s1.lock()
                .unwrap()
                .acked
                .push(e.receipt_handle().to_string());
        }
        DeleteMessageBatchOutput::builder()
            .set_successful(Some(vec![]))
            .set_failed(Some(vec![]))
            .build()
            .unwrap()
    });
    let visibility = mock!(aws_sdk_sqs::Client::change_message_visibility_batch)
        .then_compute_output(move |req| {
            for e in req.entries() {
                s2.lock().unwrap().retried.push((
                    e.receipt_handle().to_string(),
                    e.visibility_timeout().unwrap_or(0),
                ));
            }
            ChangeMessageVisibilityBatchOutput::builder()
                .set_successful(Some(vec![]))
                .set_failed(Some(vec![]))
                .build()
                .unwrap()
        });
    let attributes = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_output(|| {
        GetQueueAttributesOutput::builder()
            .attributes(
                QueueAttributeName::RedrivePolicy,
                r#"{"deadLetterTargetArn":"arn:aws:sqs:ap-northeast-2:111111111111:dlq","maxReceiveCount":"5"}"#,
            )
            .build()
    });
    sqs_client(&[&first, &delete, &visibility, &attributes])
}

/// A source bucket in which every key is gone for good.
pub fn empty_source() -> aws_sdk_s3::Client {
    let list = mock!(aws_sdk_s3::Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build());
    s3_client(&[&list])
}

/// A target with no folders under the swept prefix: the sweep walks it as one shard.
pub fn no_folders() -> Rule {
    aws_smithy_mocks::mock!(aws_sdk_s3::Client::list_objects_v2).then_output(|| {
        aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output::builder().build()
    })
}
