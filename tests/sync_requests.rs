//! The exact DataSync requests, asserted with aws-smithy-mocks (moto's DataSync stub neither
//! stores nor returns Includes). S3 (discovery, claims) still runs against the emulator.

mod common;

use s3_reconciler::labels::{Label, ObjectState, SyncResult, VerifyResult};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    // One date per filter keeps the asserted filters short.
    w.cfg.sync.lookback_days = 0;
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
        &[&start, &update, &describe, &idle_task()]
    )
}

/// DescribeTask for a task with no execution under way (checked before every start).
fn idle_task() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_datasync::Client::describe_task).then_output(|| {
        aws_sdk_datasync::operation::describe_task::DescribeTaskOutput::builder()
            .task_arn(TASK)
            .build()
    })
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
    assert_eq!(metrics.sync.files_transferred(), 12);
    assert_eq!(metrics.sync.bytes_transferred(), 3456);
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
async fn an_error_result_is_reported_with_code_and_detail_then_retried_when_due() {
    let mut h = harness(FilterMode::Execution, date()).await;
    h.cfg.sync.retry_interval = Duration::from_secs(2);
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
    assert_eq!(metrics.sync.runs(SyncResult::Error), 1);
    let store = h.store();
    let claim = store.get(date()).await.unwrap().unwrap().value;
    assert_eq!(claim.status, ClaimStatus::Failed);
    assert!(claim.error.as_deref().unwrap().contains("OpNotSupported"));
    let retry_at = claim
        .retry_at
        .expect("a failed date with attempts left has a retry time");
    let wait = (retry_at - claim.updated_at).num_milliseconds();
    assert!(
        (1900..=2100).contains(&wait),
        "retry_interval after the failure: {wait}ms"
    );

    // Before then, a run leaves it alone and starts nothing.
    let out = sy
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    let DateOutcome::Skipped { reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.starts_with("retry due at"), "{reason}");
    assert_eq!(seen.lock().unwrap().start_includes.len(), 1);

    // Once due, it is retried (attempt 2) and succeeds.
    tokio::time::sleep((retry_at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let out = sy
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = store.get(date()).await.unwrap().unwrap().value;
    assert_eq!((claim.status, claim.attempts), (ClaimStatus::Success, 2));
    assert_eq!(seen.lock().unwrap().start_includes.len(), 2);
}

/// A DataSync client whose every execution succeeds, started at `started`, reporting `files`.
fn always_succeeds(
    seen: Arc<Mutex<Seen>>,
    started: chrono::DateTime<chrono::Utc>,
    files: i64,
) -> aws_sdk_datasync::Client {
    let done = DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(TaskExecutionStatus::Success)
        .start_time(aws_smithy_types::DateTime::from_millis(
            started.timestamp_millis(),
        ))
        .files_transferred(files)
        .build();
    datasync(seen, (0..6).map(|_| done.clone()).collect())
}

fn rule(value: &str) -> Option<Vec<FilterRule>> {
    Some(vec![
        FilterRule::builder()
            .filter_type(FilterType::SimplePattern)
            .value(value)
            .build(),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_execution_includes_exactly_the_incomplete_partitions() {
    let mut h = harness(FilterMode::Execution, date()).await;
    h.cfg.sync.max_attempts = std::num::NonZeroU32::new(2).unwrap();
    // The target lacks project2's file; project1 and the Korean project are complete.
    permanently_delete(
        &h.s3,
        &h.cfg.target.bucket,
        &partition_key("project2", date()),
    )
    .await;
    // A file lands in the Korean project's partition after the execution started: it is late,
    // not missing, and the follow-up covers its partition too (issue 23 item 7).
    past_race_guard(&h.s3, &h.cfg.source.bucket).await;
    let late_key = format!(
        "topics/차량-kr/year=2024/month=03/day=09/late+0+{}.json",
        std::process::id()
    );
    put(&h.s3, &h.cfg.source.bucket, &late_key, "late").await;
    let written = all_entries(&h.s3, &h.cfg.source.bucket, &late_key).await[0]
        .3
        .unwrap();
    let started = written - chrono::Duration::seconds(1);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let metrics = Metrics::new().unwrap();
    let out = syncer_with(&h, always_succeeds(seen.clone(), started, 3), &metrics)
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    // The mock's executions all started before the late write: it stays late.
    assert_eq!(
        out,
        DateOutcome::Incomplete {
            missing: 1,
            size_mismatched: 0,
            late: 1
        }
    );
    assert_eq!(
        seen.lock().unwrap().start_includes,
        vec![
            rule(&expected_filter()),
            rule(
                "/topics/project2/year=2024/month=03/day=09/*|/topics/차량-kr/year=2024/month=03/day=09/*"
            ),
        ],
        "the follow-up names only the incomplete and late partitions"
    );
    let claim = h.store().get(date()).await.unwrap().unwrap().value;
    assert_eq!((claim.status, claim.attempts), (ClaimStatus::Failed, 2));
    assert_eq!(claim.chunks.len(), 2);
    assert_eq!(claim.chunks[1].attempt, 2);
    let v = claim.verification.unwrap();
    assert_eq!(
        (v.counts.missing, v.counts.late, v.counts.present),
        (1, 1, 2)
    );
    assert_eq!(v.missing_keys, vec![partition_key("project2", date())]);
    assert!(claim.error.unwrap().contains("1 object(s) are missing"));
    let result = |r: &str| metrics.sync.runs(SyncResult::from_label(r).expect(r));
    assert_eq!((result("incomplete"), result("success")), (1, 0));
    assert_eq!(metrics.sync.verifications(VerifyResult::Incomplete), 2);
    assert_eq!(metrics.sync.verify_objects(ObjectState::Missing), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_file_success_over_a_non_empty_partition_is_flagged() {
    let mut h = harness(FilterMode::Execution, date()).await;
    h.cfg.sync.max_attempts = std::num::NonZeroU32::new(1).unwrap();
    // What a wrong location subdirectory looks like: SUCCESS, 0 files, nothing in the target.
    for p in ["project1", "project2", "차량-kr"] {
        permanently_delete(&h.s3, &h.cfg.target.bucket, &partition_key(p, date())).await;
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let out = syncer_with(
        &h,
        always_succeeds(seen, chrono::Utc::now(), 0),
        &Metrics::new().unwrap(),
    )
    .run_date(date(), WAIT, &CancellationToken::new())
    .await
    .unwrap();
    assert_eq!(
        out,
        DateOutcome::Incomplete {
            missing: 3,
            size_mismatched: 0,
            late: 0
        }
    );
    let v = h
        .store()
        .get(date())
        .await
        .unwrap()
        .unwrap()
        .value
        .verification
        .unwrap();
    assert!(v.transferred_nothing, "{v:?}");
    assert_eq!(v.counts.expected, 3);
}

/// A runner resuming an execution keeps the clock of the execution's start: with DataSync
/// not (yet) telling the start time, the one recorded in the claim counts, so a restart does
/// not grant a fresh `sync.timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_execution_keeps_its_timeout_clock() {
    let h = harness(FilterMode::Execution, date()).await;
    // Always running, never a StartTime.
    let describe = mock!(aws_sdk_datasync::Client::describe_task_execution)
        .then_output(|| status(TaskExecutionStatus::Transferring));
    let start = mock!(aws_sdk_datasync::Client::start_task_execution).then_output(|| {
        StartTaskExecutionOutput::builder()
            .task_execution_arn(EXEC)
            .build()
    });
    let cancel = mock!(aws_sdk_datasync::Client::cancel_task_execution).then_output(|| {
        aws_sdk_datasync::operation::cancel_task_execution::CancelTaskExecutionOutput::builder()
            .build()
    });
    let ds = mock_client!(
        aws_sdk_datasync,
        RuleMode::MatchAny,
        &[&describe, &start, &cancel]
    );
    let metrics = Metrics::new().unwrap();
    let sy = syncer_with(&h, ds, &metrics);
    // A run started by this holder before a restart, 31s ago (sync.timeout is 30s).
    let started = chrono::Utc::now() - chrono::Duration::seconds(31);
    let mut chunk = s3_reconciler::sync::state::Chunk::new(expected_filter(), 1);
    chunk.execution_arn = Some(EXEC.into());
    chunk.status = Some(s3_reconciler::sync::state::ExecStatus::Transferring);
    chunk.started_at = Some(started);
    // Its holder restarted (a new process): the claim is taken over once it is stale.
    let claim = s3_reconciler::sync::state::Claim {
        date: date(),
        status: ClaimStatus::Running,
        holder: "pod-a".into(),
        holder_nonce: "the previous process".into(),
        stamp: String::new(),
        attempts: 1,
        created_at: started,
        updated_at: chrono::Utc::now() - chrono::Duration::minutes(11),
        window: vec![date()],
        projects: 3,
        chunks: vec![chunk],
        error: None,
        verification: None,
        retry_at: None,
    };
    assert!(h.store().create(claim).await.unwrap().is_some());
    let out = sy
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        out,
        DateOutcome::TimedOut {
            execution_arn: EXEC.into()
        }
    );
    assert_eq!(start.num_calls(), 0, "nothing new was started");
    assert_eq!(
        describe.num_calls(),
        1,
        "timed out at the first poll, not 30s later"
    );
    assert_eq!(cancel.num_calls(), 1, "the overdue execution is cancelled");
}

/// The scheduler retries a failed date once `sync.retry_interval` has passed, the same day,
/// not at its next cycle (a year away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_retries_a_failed_date_after_retry_interval_not_at_the_next_cycle() {
    use s3_reconciler::config::Schedule;
    let schedule = Schedule::parse("0 0 0 1 1 *").unwrap();
    let tz = chrono_tz::Asia::Seoul;
    let fired = schedule.previous_before(tz, chrono::Utc::now()).unwrap();
    let target = s3_reconciler::sync::plan::target_date(fired, tz, 1);
    let mut h = harness(FilterMode::Execution, target).await;
    h.cfg.sync.schedule = schedule;
    h.cfg.sync.catch_up_days = 0;
    h.cfg.sync.retry_interval = Duration::from_secs(1);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let failed = DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(TaskExecutionStatus::Error)
        .result(
            TaskExecutionResultDetail::builder()
                .error_code("SyncTaskErrorLocationNotAdded")
                .error_detail("an agent was unreachable")
                .build(),
        )
        .build();
    let ds = datasync(
        seen.clone(),
        vec![failed, status(TaskExecutionStatus::Success)],
    );
    let mut clients = h.clients.clone();
    clients.datasync = ds;
    let d = Daemon::start_with(h.cfg.clone(), clients).await;
    eventually(Duration::from_secs(30), "the retry succeeded", || async {
        d.metrics.sync.runs(SyncResult::Success) == 1
    })
    .await;
    assert_eq!(d.metrics.sync.runs(SyncResult::Error), 1);
    assert_eq!(seen.lock().unwrap().start_includes.len(), 2);
    let claim = h.store().get(target).await.unwrap().unwrap().value;
    assert_eq!((claim.status, claim.attempts), (ClaimStatus::Success, 2));
    assert_eq!(claim.retry_at, None);
    let (_, status) = http_get(d.port, "/status").await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let next_run: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(status["tasks"]["sync"]["details"]["next_run"].clone()).unwrap();
    assert!(
        next_run > chrono::Utc::now(),
        "retried before the next cycle ({next_run})"
    );
    d.stop().await;
}

/// Issue 23 item 10: an execution that waited in the task's queue is timed from when it left
/// the queue (LaunchTime), not from StartTime: a long transfer ahead of it does not make it
/// "time out".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_counts_from_launch_time_not_from_the_queue() {
    let h = harness(FilterMode::Execution, date()).await;
    let secs_ago = |s: i64| {
        aws_smithy_types::DateTime::from_millis(
            (chrono::Utc::now() - chrono::Duration::seconds(s)).timestamp_millis(),
        )
    };
    // Started 40s ago (sync.timeout is 30s), queued until now.
    let queued = DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(TaskExecutionStatus::Queued)
        .start_time(secs_ago(40))
        .build();
    let running = DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(TaskExecutionStatus::Transferring)
        .start_time(secs_ago(40))
        .launch_time(secs_ago(1))
        .build();
    let done = DescribeTaskExecutionOutput::builder()
        .task_execution_arn(EXEC)
        .status(TaskExecutionStatus::Success)
        .start_time(secs_ago(40))
        .launch_time(secs_ago(1))
        .build();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ds = datasync(seen, vec![queued.clone(), queued, running, done]);
    let out = syncer_with(&h, ds, &Metrics::new().unwrap())
        .run_date(date(), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = h.store().get(date()).await.unwrap().unwrap().value;
    assert!(claim.chunks[0].launched_at.is_some());
}
