//! Error paths the emulator cannot produce, with aws-smithy-mocks: per-entry DeleteObjects
//! errors, 503 SlowDown, a failing ReceiveMessage, a 412 on a claim write. Each must keep the
//! message (or the date) for a later retry and delete nothing it should not.

mod common;

use s3_reconciler::labels::{EntryKind, ErrorKind, S3Op};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CommonPrefix, DeletedObject, Error as S3EntryError};
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_smithy_mocks::mock;
use chrono::NaiveDate;
use common::mocks::*;
use common::*;
use s3_reconciler::aws::Clients;
use s3_reconciler::metrics::Metrics;
use s3_reconciler::sync::runner::{DateOutcome, RunOpts};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_entry_delete_errors_keep_the_message_and_touch_only_the_exact_keys() {
    // k1 has a version and a delete marker (and a look-alike k1.bak); k2 has one version,
    // which the target refuses to delete (AccessDenied). The listing answers any prefix as S3
    // does: the two keys arrive together and may be listed as one range.
    let list = mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(|req| {
        let prefix = req.prefix().unwrap_or_default();
        let mut out = ListObjectVersionsOutput::builder();
        for (k, v) in [("data/k1", "v1"), ("data/k1.bak", "vb"), ("data/k2", "v2")] {
            if k.starts_with(prefix) {
                out = out.versions(version(k, v));
            }
        }
        if "data/k1".starts_with(prefix) {
            out = out.delete_markers(marker("data/k1", "dm1"));
        }
        out.build()
    });
    let requested: Arc<Mutex<BTreeSet<(String, String)>>> = Arc::default();
    let seen = requested.clone();
    let delete = mock!(aws_sdk_s3::Client::delete_objects).then_compute_output(move |req| {
        let mut out = DeleteObjectsOutput::builder();
        for o in req.delete().map(|d| d.objects()).unwrap_or_default() {
            let (k, v) = (
                o.key().to_string(),
                o.version_id().unwrap_or("").to_string(),
            );
            seen.lock().unwrap().insert((k.clone(), v.clone()));
            out = if k == "data/k2" {
                out.errors(
                    S3EntryError::builder()
                        .key(k)
                        .version_id(v)
                        .code("AccessDenied")
                        .message("Access Denied")
                        .build(),
                )
            } else {
                out.deleted(DeletedObject::builder().key(k).version_id(v).build())
            };
        }
        out.build()
    });
    let target = s3_client(&[&list, &delete]);
    let settled = Arc::new(Mutex::new(Settled::default()));
    let mut body: serde_json::Value = serde_json::from_str(&s3_event(
        "src-bucket",
        "data/k1",
        "ObjectRemoved:Delete",
        "v",
    ))
    .unwrap();
    let second: serde_json::Value = serde_json::from_str(&s3_event(
        "src-bucket",
        "data/k2",
        "ObjectRemoved:Delete",
        "v",
    ))
    .unwrap();
    body["Records"]
        .as_array_mut()
        .unwrap()
        .push(second["Records"][0].clone());
    let clients = Clients {
        source: empty_source(),
        target,
        sqs: queue(vec![message("m1", body.to_string())], settled.clone()),
        datasync: datasync_client(&[]),
    };
    let d = Daemon::start_with(purge_config(), clients).await;
    eventually(Duration::from_secs(10), "the message settled", || async {
        !settled.lock().unwrap().retried.is_empty()
    })
    .await;
    let want: BTreeSet<(String, String)> =
        [("data/k1", "v1"), ("data/k1", "dm1"), ("data/k2", "v2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(
        *requested.lock().unwrap(),
        want,
        "exactly the two keys' entries, no look-alike"
    );
    {
        let s = settled.lock().unwrap();
        assert!(
            s.acked.is_empty(),
            "a message with a failed key is not acknowledged: {s:?}"
        );
        assert_eq!(
            s.retried,
            vec![("receipt-m1".to_string(), 7)],
            "left for redelivery after the backoff"
        );
    }
    assert_eq!(d.outcome("purged"), 1);
    assert_eq!(d.outcome("failed"), 1);
    let deleted = &d.metrics.purge;
    assert_eq!(deleted.deleted(EntryKind::Version), 1);
    assert_eq!(deleted.deleted(EntryKind::DeleteMarker), 1);
    // The failure makes the task not ready (threshold 1), naming what failed.
    let (code, ready) = http_get(d.port, "/readyz").await.unwrap();
    assert_eq!(code, 503, "{ready}");
    assert!(
        ready.contains("data/k2") && ready.contains("AccessDenied"),
        "{ready}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_keeps_the_message_and_deletes_nothing() {
    let slow_down = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>R</RequestId><HostId>H</HostId></Error>"#;
    let list = mock!(aws_sdk_s3::Client::list_object_versions)
        .sequence()
        .http_status(503, Some(slow_down.to_string()))
        .repeatedly()
        .build();
    let delete = mock!(aws_sdk_s3::Client::delete_objects)
        .then_output(|| DeleteObjectsOutput::builder().build());
    let target = s3_client(&[&list, &delete]);
    let settled = Arc::new(Mutex::new(Settled::default()));
    let clients = Clients {
        source: empty_source(),
        target,
        sqs: queue(
            vec![message(
                "m1",
                s3_event("src-bucket", "k", "ObjectRemoved:Delete", "v"),
            )],
            settled.clone(),
        ),
        datasync: datasync_client(&[]),
    };
    let d = Daemon::start_with(purge_config(), clients).await;
    eventually(Duration::from_secs(10), "the message settled", || async {
        !settled.lock().unwrap().retried.is_empty()
    })
    .await;
    assert_eq!(delete.num_calls(), 0, "nothing deleted");
    assert!(settled.lock().unwrap().acked.is_empty());
    assert_eq!(
        list.num_calls(),
        2,
        "the SDK retried once (aws.max_attempts = 2), then gave up"
    );
    assert_eq!(d.outcome("failed"), 1);
    let throttled = d
        .metrics
        .aws
        .failures(S3Op::ListObjectVersions, ErrorKind::Throttling);
    assert_eq!(throttled, 1, "one failed call, counted by kind");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receive_makes_the_task_not_ready_and_touches_nothing() {
    let denied = r#"{"__type":"com.amazonaws.sqs#AccessDenied","message":"not authorized to perform sqs:ReceiveMessage"}"#;
    let receive = mock!(aws_sdk_sqs::Client::receive_message)
        .sequence()
        .http_status(403, Some(denied.to_string()))
        .times(3)
        .output(|| {
            std::thread::sleep(Duration::from_millis(50));
            ReceiveMessageOutput::builder().build()
        })
        .repeatedly()
        .build();
    let attributes = mock!(aws_sdk_sqs::Client::get_queue_attributes)
        .then_output(|| GetQueueAttributesOutput::builder().build());
    let list = mock!(aws_sdk_s3::Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build());
    let delete = mock!(aws_sdk_s3::Client::delete_objects)
        .then_output(|| DeleteObjectsOutput::builder().build());
    let clients = Clients {
        source: s3_client(&[&list]),
        target: s3_client(&[&delete]),
        sqs: sqs_client(&[&receive, &attributes]),
        datasync: datasync_client(&[]),
    };
    let d = Daemon::start_with(purge_config(), clients).await;
    eventually(
        Duration::from_secs(10),
        "/readyz names the failing receive",
        || async {
            matches!(http_get(d.port, "/readyz").await,
            Some((503, body)) if body.contains("ReceiveMessage") && body.contains("access_denied"))
        },
    )
    .await;
    // Receives recover after three failures (backoff 1s, 2s, 4s): ready again, no restart.
    eventually(
        Duration::from_secs(15),
        "/readyz 200 once receives work",
        || async { matches!(http_get(d.port, "/readyz").await, Some((200, _))) },
    )
    .await;
    assert_eq!(
        list.num_calls() + delete.num_calls(),
        0,
        "no S3 call without a message"
    );
    assert_eq!(
        d.metrics.purge.dlq_configured(),
        0,
        "no redrive policy reported"
    );
    d.stop().await;
}

/// A 412 on a claim write means another runner owns the date: stop, start nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_412_on_a_claim_update_stops_work_on_the_date() {
    let date = NaiveDate::from_ymd_opt(2024, 3, 9).unwrap();
    let discover = mock!(aws_sdk_s3::Client::list_objects_v2).then_output(|| {
        ListObjectsV2Output::builder()
            .common_prefixes(CommonPrefix::builder().prefix("topics/p1/").build())
            .build()
    });
    let no_claim = mock!(aws_sdk_s3::Client::get_object).then_error(|| {
        aws_sdk_s3::operation::get_object::GetObjectError::NoSuchKey(
            aws_sdk_s3::types::error::NoSuchKey::builder().build(),
        )
    });
    let precondition = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-Match</Condition></Error>"#;
    // The task's lock and the claim are created (If-None-Match), the start token written
    // (claim and lock, If-Match), then the write recording the started execution (If-Match)
    // loses to another runner; the lock is let go at the end.
    let put = mock!(aws_sdk_s3::Client::put_object)
        .sequence()
        .output(|| PutObjectOutput::builder().e_tag("\"e1\"").build())
        .times(4)
        .http_status(412, Some(precondition.to_string()))
        .output(|| PutObjectOutput::builder().e_tag("\"e2\"").build())
        .repeatedly()
        .build();
    let state = s3_client(&[&discover, &no_claim, &put]);
    let idle = mock!(aws_sdk_datasync::Client::describe_task).then_output(|| {
        aws_sdk_datasync::operation::describe_task::DescribeTaskOutput::builder().build()
    });
    let start = mock!(aws_sdk_datasync::Client::start_task_execution).then_output(|| {
        aws_sdk_datasync::operation::start_task_execution::StartTaskExecutionOutput::builder()
            .task_execution_arn(EXEC)
            .build()
    });
    let describe = mock!(aws_sdk_datasync::Client::describe_task_execution).then_output(|| {
        aws_sdk_datasync::operation::describe_task_execution::DescribeTaskExecutionOutput::builder()
            .build()
    });
    // The execution it had just started is nobody's now (the claim's new state names no
    // holder that adopted it): it is cancelled, not left to run untracked.
    let cancel = mock!(aws_sdk_datasync::Client::cancel_task_execution)
        .match_requests(|r| r.task_execution_arn() == Some(EXEC))
        .then_output(|| {
            aws_sdk_datasync::operation::cancel_task_execution::CancelTaskExecutionOutput::builder()
                .build()
        });
    let mut cfg = purge_config();
    cfg.purge.enabled = false;
    cfg.sync.enabled = true;
    cfg.sync.task_arn = TASK.into();
    cfg.state.bucket = "state-bucket".into();
    let clients = Clients {
        source: state.clone(),
        target: state,
        sqs: sqs_client(&[]),
        datasync: datasync_client(&[&start, &describe, &idle, &cancel]),
    };
    let sy = syncer(&cfg, &clients, "pod-a", &Metrics::new().unwrap());
    let out = sy
        .run_date(
            date,
            RunOpts {
                force: false,
                wait: true,
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        DateOutcome::Skipped {
            reason: "claim lost".into()
        }
    );
    assert_eq!(start.num_calls(), 1, "one execution, not a second");
    assert_eq!(
        describe.num_calls(),
        0,
        "not followed by a runner that lost the claim"
    );
    assert_eq!(cancel.num_calls(), 1, "the orphaned execution is cancelled");
    assert_eq!(put.num_calls(), 6);

    // A claim that is already there and being updated by someone else: no execution at all.
    let body = serde_json::json!({
        "date": "2024-03-09", "status": "failed", "holder": "pod-b", "attempts": 1,
        "created_at": "2024-03-09T01:30:00Z", "updated_at": "2024-03-09T01:31:00Z",
        "chunks": []
    })
    .to_string();
    let existing = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|r| r.key().is_some_and(|k| k.contains("claims/")))
        .then_output(move || {
            GetObjectOutput::builder()
                .e_tag("\"e0\"")
                .body(ByteStream::from(body.clone().into_bytes()))
                .build()
        });
    // The task's lock is taken, the claim's replacement loses, the lock is let go.
    let put = mock!(aws_sdk_s3::Client::put_object)
        .sequence()
        .output(|| PutObjectOutput::builder().e_tag("\"l1\"").build())
        .http_status(412, Some(precondition.to_string()))
        .output(|| PutObjectOutput::builder().e_tag("\"l2\"").build())
        .repeatedly()
        .build();
    let state = s3_client(&[&discover, &existing, &no_claim, &put]);
    let clients = Clients {
        source: state.clone(),
        target: state,
        ..clients
    };
    let sy = syncer(&cfg, &clients, "pod-a", &Metrics::new().unwrap());
    let out = sy
        .run_date(
            date,
            RunOpts {
                force: false,
                wait: true,
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        DateOutcome::Skipped {
            reason: "claimed by another runner".into()
        }
    );
    assert_eq!(
        start.num_calls(),
        1,
        "still only the first test's execution"
    );
}

/// An S3 endpoint answering every ListObjectVersions with an empty page, after `delay` for
/// one key prefix and at once for all others. (The mocks crate answers under a lock, so a
/// slow rule there would slow every request, not one.)
#[derive(Debug, Clone)]
struct SlowForOneKey {
    slow_prefix: &'static str,
    delay: Duration,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for SlowForOneKey {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let wanted = format!("prefix={}", self.slow_prefix.replace('/', "%2F"));
        let slow = request.uri().contains(&wanted);
        let delay = self.delay;
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            if slow {
                tokio::time::sleep(delay).await;
            }
            let body = r#"<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>"#;
            Ok(
                aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(200).unwrap(),
                    aws_smithy_types::body::SdkBody::from(body),
                ),
            )
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for SlowForOneKey {
    fn http_connector(
        &self,
        _: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(self.clone())
    }
}

/// One slow key holds only its own message: the others are acknowledged, and new messages are
/// received and acknowledged, while it is still being listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_key_holds_only_its_own_message() {
    let slow = Duration::from_secs(3);
    let target = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .with_test_defaults_v2()
            .http_client(aws_smithy_runtime_api::client::http::SharedHttpClient::new(
                SlowForOneKey {
                    slow_prefix: "data/slow",
                    delay: slow,
                },
            ))
            .build(),
    );
    let event = |key: &str| s3_event("src-bucket", key, "ObjectRemoved:Delete", "v");
    let first = vec![
        message("slow", event("data/slow")),
        message("fast1", event("data/fast1")),
        message("fast2", event("data/fast2")),
    ];
    let later = vec![message("fast3", event("data/fast3"))];
    let receive = mock!(aws_sdk_sqs::Client::receive_message)
        .sequence()
        .output(move || {
            ReceiveMessageOutput::builder()
                .set_messages(Some(first.clone()))
                .build()
        })
        .output(move || {
            ReceiveMessageOutput::builder()
                .set_messages(Some(later.clone()))
                .build()
        })
        .output(|| {
            std::thread::sleep(Duration::from_millis(20));
            ReceiveMessageOutput::builder().build()
        })
        .repeatedly()
        .build();
    let started = std::time::Instant::now();
    let acked: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
    let seen = acked.clone();
    let ack = mock!(aws_sdk_sqs::Client::delete_message_batch).then_compute_output(move |req| {
        for e in req.entries() {
            seen.lock()
                .unwrap()
                .push((e.receipt_handle().to_string(), started.elapsed()));
        }
        DeleteMessageBatchOutput::builder()
            .set_successful(Some(vec![]))
            .set_failed(Some(vec![]))
            .build()
            .unwrap()
    });
    let attributes = mock!(aws_sdk_sqs::Client::get_queue_attributes)
        .then_output(|| GetQueueAttributesOutput::builder().build());
    let mut cfg = purge_config();
    cfg.purge.concurrency = std::num::NonZeroUsize::new(4).unwrap();
    let clients = Clients {
        source: empty_source(),
        target,
        sqs: sqs_client(&[&receive, &ack, &attributes]),
        datasync: datasync_client(&[]),
    };
    let d = Daemon::start_with(cfg, clients).await;
    eventually(
        Duration::from_secs(15),
        "every message acknowledged",
        || async { acked.lock().unwrap().len() == 4 },
    )
    .await;
    let acked = acked.lock().unwrap().clone();
    let at = |id: &str| {
        acked
            .iter()
            .find(|(r, _)| r == &format!("receipt-{id}"))
            .map(|(_, t)| *t)
            .unwrap()
    };
    assert!(at("slow") >= slow, "{acked:?}");
    for fast in ["fast1", "fast2", "fast3"] {
        assert!(
            at(fast) < slow,
            "{fast} must be received and acknowledged while the slow key is still listed: {acked:?}"
        );
    }
    assert_eq!(d.outcome("nothing_to_purge"), 4);
    d.stop().await;
}

/// The sweep's walk only nominates: a key re-created in the source after the walk passed it is
/// kept, because every orphan is re-listed and decided. And after the first delete error,
/// nothing more is deleted in the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_rechecks_each_orphan_and_stops_deleting_after_the_first_error() {
    use s3_reconciler::sweep::{RunKind, Sweeper};
    let walk_src = mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(|req| {
        let out = ListObjectVersionsOutput::builder();
        match req.prefix() {
            // The walk: p/recreated is not there yet.
            Some("p/") => out.versions(version("p/common", "c1")),
            Some("p/common") => out.versions(version("p/common", "c1")),
            // Re-listed for the decision: it came back meanwhile.
            Some("p/recreated") => out.versions(version("p/recreated", "new")),
            _ => out,
        }
        .build()
    });
    let no_lease = mock!(aws_sdk_s3::Client::get_object).then_error(|| {
        aws_sdk_s3::operation::get_object::GetObjectError::NoSuchKey(
            aws_sdk_s3::types::error::NoSuchKey::builder().build(),
        )
    });
    let lease_put = mock!(aws_sdk_s3::Client::put_object)
        .then_output(|| PutObjectOutput::builder().e_tag("\"l\"").build());
    let target_keys = ["p/common", "p/o1", "p/o2", "p/o3", "p/recreated"];
    let walk_tgt =
        mock!(aws_sdk_s3::Client::list_object_versions).then_compute_output(move |req| {
            let prefix = req.prefix().unwrap_or_default();
            let mut out = ListObjectVersionsOutput::builder();
            for k in target_keys.iter().filter(|k| k.starts_with(prefix)) {
                out = out.versions(version(k, "v1"));
            }
            out.build()
        });
    let requested: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = requested.clone();
    let delete = mock!(aws_sdk_s3::Client::delete_objects).then_compute_output(move |req| {
        let mut out = DeleteObjectsOutput::builder();
        for o in req.delete().map(|d| d.objects()).unwrap_or_default() {
            seen.lock().unwrap().push(o.key().to_string());
            let (k, v) = (o.key(), o.version_id().unwrap_or_default());
            out = if k == "p/o1" {
                out.errors(
                    S3EntryError::builder()
                        .key(k)
                        .version_id(v)
                        .code("AccessDenied")
                        .message("Access Denied")
                        .build(),
                )
            } else {
                out.deleted(DeletedObject::builder().key(k).version_id(v).build())
            };
        }
        out.build()
    });
    let mut cfg = purge_config();
    cfg.state.bucket = "state-bucket".into();
    cfg.sweep.prefixes = vec!["p/".into()];
    cfg.sweep.concurrency = std::num::NonZeroUsize::new(1).unwrap();
    cfg.sweep.min_age = Duration::from_secs(1);
    let clients = Clients {
        source: s3_client(&[&walk_src, &no_lease, &lease_put]),
        target: s3_client(&[&walk_tgt, &delete, &no_folders()]),
        sqs: sqs_client(&[]),
        datasync: datasync_client(&[]),
    };
    let metrics = Metrics::new().unwrap();
    let sweeper = Sweeper::new(std::sync::Arc::new(cfg), &clients, metrics.clone());
    let lines = std::sync::Mutex::new(Vec::new());
    let summary = sweeper
        .run(
            &["p/".to_string()],
            RunKind::Purge,
            &CancellationToken::new(),
            &|l| lines.lock().unwrap().push(serde_json::to_value(l).unwrap()),
        )
        .await;
    let lines = lines.into_inner().unwrap();
    let fate = |k: &str| {
        let l = lines
            .iter()
            .find(|l| l["key"] == k)
            .unwrap_or_else(|| panic!("{k}: {lines:#?}"));
        (
            l["action"].as_str().unwrap().to_string(),
            l["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(fate("p/o1"), ("kept".into(), "failed".into()));
    assert_eq!(fate("p/o2"), ("kept".into(), "after_error".into()));
    assert_eq!(fate("p/o3"), ("kept".into(), "after_error".into()));
    assert_eq!(
        fate("p/recreated"),
        ("kept".into(), "source_present".into())
    );
    assert!(lines.iter().all(|l| l["key"] != "p/common"));
    assert_eq!(
        *requested.lock().unwrap(),
        vec!["p/o1".to_string()],
        "one delete, then none"
    );
    assert_eq!(summary.result.label(), "stopped_after_error");
    assert!(!summary.ok());
    assert_eq!(metrics.sweep.purged(), 0);
}

/// Issue 23 item 12: S3 answers 409 ConditionalRequestConflict when two conditional writes
/// race. AWS advises retrying it: the write is retried (after a pause) and succeeds, rather
/// than being taken for a loss.
#[tokio::test]
async fn a_409_conditional_conflict_is_retried_not_taken_for_a_lost_write() {
    let conflict = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation is currently in progress against this resource.</Message></Error>"#;
    let put = mock!(aws_sdk_s3::Client::put_object)
        .sequence()
        .http_status(409, Some(conflict.to_string()))
        .times(2)
        .output(|| PutObjectOutput::builder().e_tag("\"e1\"").build())
        .build();
    let client = s3_client(&[&put]);
    let metrics = Metrics::new().unwrap();
    let bucket = s3_reconciler::aws::s3::Bucket::new(client, "state-bucket", metrics);
    let store = s3_reconciler::store::JsonStore::new(bucket, "s3-reconciler/");
    let written = store
        .create("claims/2024-03-09.json", &serde_json::json!({"a": 1}))
        .await
        .unwrap();
    assert!(
        matches!(written, s3_reconciler::store::Written::Ok { ref etag } if etag == "\"e1\""),
        "{written:?}"
    );
    assert_eq!(put.num_calls(), 3);
}
