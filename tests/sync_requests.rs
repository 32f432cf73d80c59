//! The exact DataSync requests, asserted with aws-smithy-mocks (moto's DataSync stub neither
//! stores nor returns Includes). S3 (discovery, claims) still runs against the emulator.

mod common;

use std::sync::{Arc, Mutex};

use aws_sdk_datasync::operation::describe_task_execution::DescribeTaskExecutionOutput;
use aws_sdk_datasync::operation::start_task_execution::StartTaskExecutionOutput;
use aws_sdk_datasync::operation::update_task::UpdateTaskOutput;
use aws_sdk_datasync::types::{
    FilterRule, FilterType, TaskExecutionResultDetail, TaskExecutionStatus,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::NaiveDate;
use common::*;
use s3_reconciler::config::FilterMode;
use s3_reconciler::metrics::Metrics;
use s3_reconciler::sync::runner::{DateOutcome, RunOpts};
use s3_reconciler::sync::state::ClaimStatus;
use tokio_util::sync::CancellationToken;

const EXEC: &str = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0/execution/exec-0bc08d054f39be4db";
const TASK: &str = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0";
const WAIT: RunOpts = RunOpts {
    force: false,
    wait: true,
};

#[derive(Default, Debug)]
struct Seen {
    start_includes: Vec<Option<Vec<FilterRule>>>,
    start_tags: Vec<Vec<(String, String)>>,
    update_includes: Vec<Option<Vec<FilterRule>>>,
}

async fn harness(mode: FilterMode, date: NaiveDate) -> SyncWorld {
    let projects = vec![
        "project1".to_string(),
        "project2".to_string(),
        "차량-kr".to_string(),
    ];
    let mut w = SyncWorld::new(&projects, date).await;
    w.cfg.sync.task_arn = TASK.into();
    w.cfg.sync.filter_mode = mode;
    w
}

/// A DataSync client that records what it is sent and answers `describe` in turn.
fn datasync(
    seen: Arc<Mutex<Seen>>,
    describe: Vec<DescribeTaskExecutionOutput>,
) -> aws_sdk_datasync::Client {
    let s1 = seen.clone();
    let start =
        mock!(aws_sdk_datasync::Client::start_task_execution).then_compute_output(move |req| {
            let mut s = s1.lock().unwrap();
            s.start_includes.push(req.includes.clone());
            s.start_tags.push(
                req.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
                    .collect(),
            );
            StartTaskExecutionOutput::builder()
                .task_execution_arn(EXEC)
                .build()
        });
    let s2 = seen.clone();
    let update = mock!(aws_sdk_datasync::Client::update_task).then_compute_output(move |req| {
        s2.lock()
            .unwrap()
            .update_includes
            .push(req.includes.clone());
        UpdateTaskOutput::builder().build()
    });
    let mut seq = mock!(aws_sdk_datasync::Client::describe_task_execution).sequence();
    for out in describe {
        seq = seq.output(move || out.clone());
    }
    let describe = seq.build();
    mock_client!(
        aws_sdk_datasync,
        RuleMode::MatchAny,
        &[&start, &update, &describe]
    )
}

fn status(s: TaskExecutionStatus) -> DescribeTaskExecutionOutput {
    DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(s)
        .build()
}

fn expected_filter() -> String {
    // Sorted by key: ASCII project names first, then the Korean one.
    "/topics/project1/year=2024/month=03/day=09/*|/topics/project2/year=2024/month=03/day=09/*|/topics/차량-kr/year=2024/month=03/day=09/*".to_string()
}

fn syncer_with(
    h: &SyncWorld,
    ds: aws_sdk_datasync::Client,
    metrics: &Metrics,
) -> s3_reconciler::sync::runner::Syncer {
    let mut clients = h.clients.clone();
    clients.datasync = ds;
    syncer(&h.cfg, &clients, "pod-a", metrics)
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 9).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_mode_sends_the_includes_override_and_leaves_the_task_alone() {
    let h = harness(FilterMode::Execution, date()).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(TaskExecutionStatus::Success)
        .files_transferred(12)
        .bytes_transferred(3456)
        .build();
    let ds = datasync(
        seen.clone(),
        vec![status(TaskExecutionStatus::Transferring), done],
    );
    let metrics = Metrics::new().unwrap();
    let out = syncer_with(&h, ds, &metrics)
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        out,
        DateOutcome::Success {
            files: 12,
            bytes: 3456
        }
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen.update_includes.is_empty(),
        "UpdateTask must not be called"
    );
    let rule = FilterRule::builder()
        .filter_type(FilterType::SimplePattern)
        .value(expected_filter())
        .build();
    assert_eq!(seen.start_includes, vec![Some(vec![rule])]);
    assert!(seen.start_tags[0].contains(&(
        "s3-reconciler:partition-date".to_string(),
        "2024-03-09".to_string()
    )));
    assert_eq!(metrics.sync_files_transferred.get(), 12);
    assert_eq!(metrics.sync_bytes_transferred.get(), 3456);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_mode_updates_the_task_then_starts_without_override() {
    let h = harness(FilterMode::Task, date()).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ds = datasync(seen.clone(), vec![status(TaskExecutionStatus::Success)]);
    let metrics = Metrics::new().unwrap();
    let out = syncer_with(&h, ds, &metrics)
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let seen = seen.lock().unwrap();
    let rule = FilterRule::builder()
        .filter_type(FilterType::SimplePattern)
        .value(expected_filter())
        .build();
    assert_eq!(seen.update_includes, vec![Some(vec![rule])]);
    assert_eq!(
        seen.start_includes,
        vec![None],
        "no per-execution override in task mode"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_result_is_reported_with_code_and_detail_then_retried() {
    let h = harness(FilterMode::Execution, date()).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let failed = DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(TaskExecutionStatus::Error)
        .result(
            TaskExecutionResultDetail::builder()
                .error_code("OpNotSupported")
                .error_detail("S3 location is not accessible: Access Denied")
                .build(),
        )
        .build();
    // An unknown future status is treated as running, not as a failure.
    let ds = datasync(
        seen.clone(),
        vec![
            status(TaskExecutionStatus::from("SOMETHING_NEW")),
            failed,
            status(TaskExecutionStatus::Success),
        ],
    );
    let metrics = Metrics::new().unwrap();
    let sy = syncer_with(&h, ds, &metrics);
    let out = sy
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    let DateOutcome::Failed { reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("OpNotSupported"), "{reason}");
    assert!(reason.contains("Access Denied"), "{reason}");
    assert_eq!(metrics.sync_runs.with_label_values(&["error"]).get(), 1);
    let store = h.store();
    let claim = store.get(date()).await.unwrap().unwrap().claim;
    assert_eq!(claim.status, ClaimStatus::Failed);
    assert!(claim.error.as_deref().unwrap().contains("OpNotSupported"));

    // The next cycle retries the failed date (attempt 2) and succeeds.
    let out = sy
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = store.get(date()).await.unwrap().unwrap().claim;
    assert_eq!((claim.status, claim.attempts), (ClaimStatus::Success, 2));
    assert_eq!(seen.lock().unwrap().start_includes.len(), 2);
}
