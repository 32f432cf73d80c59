//! The daily sync against the lab's DataSync model, which queues executions on a task, reports
//! `StartTime` and `LaunchTime`, keeps tags, copies as of its transfer's start, and injects the
//! faults moto's stub cannot: a start accepted whose answer is lost or late, claim writes that
//! took effect but answered 500. Each test pins an issue-23 fix.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::lab::{self, datasync_task, executions, lab_sync_config};
use common::{partition_key, syncer, unique};
use s3_reconciler::config::Config;
use s3_reconciler::metrics::Metrics;
use s3_reconciler::sync::execution::START_TAG;
use s3_reconciler::sync::runner::{DateOutcome, RunOpts};
use s3_reconciler::sync::state::{Chunk, Claim, ClaimStatus, StateStore};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: RunOpts = RunOpts {
    force: false,
    wait: true,
};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

/// Phases of a few tens of milliseconds each.
fn quick() -> Value {
    json!({"launch_s": 0.05, "prepare_s": 0.05, "transfer_s": [0.1, 0.2], "verify_s": 0.05})
}

struct World {
    cfg: Config,
    clients: s3_reconciler::aws::Clients,
    task: String,
}

impl World {
    /// Source and target buckets with `projects`' partitions for `dates` in the source only
    /// (the lab's DataSync copies them), a state bucket and a task with `timing`, `faults`.
    async fn new(dates: &[NaiveDate], timing: Value, faults: Value) -> World {
        let (src, tgt) = (lab::bucket("ssrc").await, lab::bucket("stgt").await);
        let state = unique("sstate");
        lab::admin("bucket", json!({"name": state, "versioned": false})).await;
        for d in dates {
            for p in ["project0", "project1"] {
                lab::write(&src, &partition_key(p, *d), json!({})).await;
            }
        }
        let task = datasync_task(&src, &tgt, timing, faults).await;
        let mut cfg = lab_sync_config(&src, &tgt, &state, &task);
        cfg.sync.poll_interval = Duration::from_millis(20);
        cfg.sync.retry_interval = Duration::from_secs(1);
        let clients = s3_reconciler::aws::Clients::new(&cfg).await;
        World { cfg, clients, task }
    }

    fn syncer(&self, holder: &str) -> s3_reconciler::sync::runner::Syncer {
        syncer(&self.cfg, &self.clients, holder, &Metrics::new().unwrap())
    }

    fn store(&self) -> StateStore {
        StateStore::new(
            self.clients.source.clone(),
            &self.cfg.state.bucket,
            &self.cfg.state.prefix,
            Metrics::new().unwrap(),
        )
    }

    async fn claim(&self, date: NaiveDate) -> Claim {
        self.store().get(date).await.unwrap().unwrap().value
    }
}

/// Item 8 and 9: StartTaskExecution started the execution and answered 500. The runner finds
/// it by its start token and follows it; it does not start the chunk again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_answer_was_lost_is_found_and_followed_not_repeated() {
    let w = World::new(&[day(9)], quick(), json!({"seed": 1, "start_lost": 1.0})).await;
    let out = w
        .syncer("pod-a")
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let execs = executions(&w.task).await;
    assert_eq!(execs.len(), 1, "{execs:#?}");
    let claim = w.claim(day(9)).await;
    assert_eq!(
        claim.chunks[0].execution_arn.as_deref(),
        execs[0]["arn"].as_str()
    );
    assert_eq!(
        execs[0]["tags"][START_TAG].as_str(),
        claim.chunks[0].start_token.as_deref()
    );
}

/// Item 9: a start answered after the client's timeout is sent once (the SDK would retry it
/// and start a second, untracked execution), then found by its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_answered_too_late_is_sent_once_and_found() {
    let mut w = World::new(
        &[day(9)],
        quick(),
        json!({"seed": 2, "start_slow": 1.0, "start_slow_ms": 1500}),
    )
    .await;
    w.cfg.aws.attempt_timeout = Duration::from_millis(400);
    w.cfg.aws.operation_timeout = Duration::from_secs(3);
    w.clients = s3_reconciler::aws::Clients::new(&w.cfg).await;
    let out = w
        .syncer("pod-a")
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let execs = executions(&w.task).await;
    assert_eq!(execs.len(), 1, "one start, one execution: {execs:#?}");
}

/// Item 9: every claim (and lock) write takes effect and then answers 500. The SDK's retry
/// gets 412; the runner reads the document back, sees its own write, and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_writes_that_took_effect_but_answered_500_are_recognised_as_ours() {
    let w = World::new(&[day(9)], quick(), json!({})).await;
    lab::admin(
        "faults",
        json!({"seed": 3, "buckets": [w.cfg.state.bucket], "error_after": 1.0}),
    )
    .await;
    let out = w
        .syncer("pod-a")
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = w.claim(day(9)).await;
    assert_eq!(
        (claim.status, claim.holder.as_str()),
        (ClaimStatus::Success, "pod-a")
    );
    assert_eq!(executions(&w.task).await.len(), 1);
}

/// Item 8: the process died after StartTaskExecution and before recording its ARN (the claim
/// holds the chunk's start token only). Whoever takes the claim over adopts that execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_start_and_recording_the_arn_adopts_the_started_execution() {
    let mut w = World::new(&[day(9)], quick(), json!({})).await;
    w.cfg.sync.claim_ttl = Duration::from_millis(200);
    let heir = w.syncer("pod-b");
    let plan = heir.plan(day(9)).await.unwrap();
    let token = "0123456789abcdef0123456789abcdef";
    let mut chunk = Chunk::new(plan.filters[0].clone(), 1);
    chunk.start_token = Some(token.into());
    let then = chrono::Utc::now() - chrono::Duration::seconds(5);
    let claim = Claim {
        date: day(9),
        status: ClaimStatus::Running,
        holder: "pod-a".into(),
        holder_nonce: "dead".into(),
        stamp: String::new(),
        attempts: 1,
        created_at: then,
        updated_at: then,
        window: plan.dates.clone(),
        projects: plan.projects,
        chunks: vec![chunk],
        error: None,
        verification: None,
        retry_at: None,
    };
    assert!(w.store().create(claim).await.unwrap().is_some());
    // The dead process's start, as DataSync got it.
    let started = w
        .clients
        .datasync
        .start_task_execution()
        .task_arn(&w.task)
        .includes(
            aws_sdk_datasync::types::FilterRule::builder()
                .filter_type(aws_sdk_datasync::types::FilterType::SimplePattern)
                .value(&plan.filters[0])
                .build(),
        )
        .tags(
            aws_sdk_datasync::types::TagListEntry::builder()
                .key(START_TAG)
                .value(token)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let out = heir
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    assert_eq!(executions(&w.task).await.len(), 1, "nothing started again");
    assert_eq!(
        w.claim(day(9)).await.chunks[0].execution_arn.as_deref(),
        started.task_execution_arn()
    );
}

/// Item 10: two replicas on two dates share one task. They take turns: no execution ever
/// waits in the task's queue behind another, and both dates end synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_different_dates_take_turns_on_the_task() {
    let w = World::new(&[day(8), day(9)], quick(), json!({})).await;
    let (a, b) = (w.syncer("pod-a"), w.syncer("pod-b"));
    let token = CancellationToken::new();
    let (ra, rb) = tokio::join!(
        a.run_date(day(8), WAIT, &token),
        b.run_date(day(9), WAIT, &token)
    );
    for out in [ra.unwrap(), rb.unwrap()] {
        assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    }
    let execs = executions(&w.task).await;
    assert_eq!(execs.len(), 2, "{execs:#?}");
    for pair in execs.windows(2) {
        let (first_end, next_start) = (pair[0]["end_ms"].as_i64(), pair[1]["start_ms"].as_i64());
        assert!(
            first_end <= next_start,
            "an execution was started while another ran: {pair:#?}"
        );
    }
}

/// Item 10: an execution started by hand holds the task: the runner waits for it instead of
/// queueing behind it (where its own timeout would tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_started_by_hand_is_waited_for_before_starting() {
    let w = World::new(
        &[day(9)],
        json!({"launch_s": 0.05, "prepare_s": 0.05, "transfer_s": [0.6, 0.6], "verify_s": 0.05}),
        json!({}),
    )
    .await;
    w.clients
        .datasync
        .start_task_execution()
        .task_arn(&w.task)
        .send()
        .await
        .unwrap();
    let out = w
        .syncer("pod-a")
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let execs = executions(&w.task).await;
    assert_eq!(execs.len(), 2);
    assert!(
        execs[1]["start_ms"].as_i64() >= execs[0]["end_ms"].as_i64(),
        "started while the manual execution ran: {execs:#?}"
    );
    assert_eq!(execs[1]["launch_ms"], execs[1]["start_ms"], "never queued");
}

/// Item 7: an object written into the date's partition after its execution copied is late.
/// The date is not final: it is `late`, a follow-up copies the object, and only then is the
/// date a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_objects_are_followed_up_before_the_date_is_final() {
    let w = World::new(
        &[day(9)],
        json!({"launch_s": 0.05, "prepare_s": 0.05, "transfer_s": [2.5, 2.5], "verify_s": 0.05}),
        json!({}),
    )
    .await;
    let sy = w.syncer("pod-a");
    let run = tokio::spawn({
        let sy = sy.clone();
        async move { sy.run_date(day(9), WAIT, &CancellationToken::new()).await }
    });
    common::eventually(Duration::from_secs(10), "the transfer to begin", || async {
        executions(&w.task)
            .await
            .first()
            .is_some_and(|e| e["status"] == "TRANSFERRING")
    })
    .await;
    // S3 lists whole seconds: be clearly after the execution's start.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = partition_key("project1", day(9)).replace("+0+", "+1+");
    lab::write(&w.cfg.source.bucket, &late, json!({})).await;
    let out = run.await.unwrap().unwrap();
    assert_eq!(out, DateOutcome::Late { objects: 1 });
    let claim = w.claim(day(9)).await;
    assert_eq!(claim.status, ClaimStatus::Late);
    let retry_at = claim.retry_at.expect("a late date has a follow-up time");
    // Before the follow-up is due, nothing happens; then it copies and verifies.
    let early = sy
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(early, DateOutcome::Skipped { .. }), "{early:?}");
    tokio::time::sleep((retry_at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let out = sy
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = w.claim(day(9)).await;
    assert_eq!((claim.chunks.len(), claim.chunks[1].attempt), (2, 2));
    assert!(
        claim.chunks[1]
            .filter
            .contains("/topics/project1/year=2024/month=03/day=09/*")
    );
    let target = lab::dump(&w.cfg.target.bucket).await;
    assert!(target.iter().any(|(k, _, _)| *k == late), "{target:?}");
}
