//! Daily sync against the emulator: discovery, the execution lifecycle, claims (races,
//! restarts, takeovers) and catch-up.

mod common;

use s3_reconciler::labels::SyncResult;
use std::time::Duration;

use chrono::NaiveDate;
use common::*;
use s3_reconciler::metrics::Metrics;
use s3_reconciler::sync::runner::{DateOutcome, RunOpts};
use s3_reconciler::sync::scheduler::dates_to_run;
use s3_reconciler::sync::state::{ClaimStatus, ExecStatus, StateStore};
use tokio_util::sync::CancellationToken;

const WAIT: RunOpts = RunOpts {
    force: false,
    wait: true,
};

async fn setup(projects: usize, date: NaiveDate) -> SyncWorld {
    SyncWorld::new(&SyncWorld::names(projects), date).await
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

const NO_WAIT: RunOpts = RunOpts {
    force: false,
    wait: false,
};

/// Waits until the date's claim has not been refreshed for `claim_ttl`.
async fn wait_stale(s: &SyncWorld, date: NaiveDate) {
    let ttl = chrono::Duration::from_std(s.cfg.sync.claim_ttl).unwrap();
    eventually(Duration::from_secs(10), "the claim to go stale", || async {
        let claim = store(s).get(date).await.unwrap().unwrap().value;
        chrono::Utc::now() - claim.updated_at > ttl
    })
    .await;
}

fn store(s: &SyncWorld) -> StateStore {
    s.store()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_every_page_of_more_than_a_thousand_projects() {
    let s = setup(1050, day(1)).await;
    // A file directly under the prefix is not a project.
    put(&s.s3, &s.cfg.source.bucket, "topics/README.txt", "x").await;
    let metrics = Metrics::new().unwrap();
    let sy = syncer(&s.cfg, &s.clients, "a", &metrics);
    let projects = sy.discover().await.unwrap();
    assert_eq!(projects.len(), 1050);
    assert!(projects.contains(&"topics/project1049/".to_string()));
    assert_eq!(
        metrics
            .aws
            .calls(s3_reconciler::labels::S3Op::ListObjectsV2),
        2,
        "1,050 common prefixes take two pages"
    );
    // Globs apply to project names.
    let mut cfg = s.cfg.clone();
    cfg.sync.include_projects = vec!["project10*".into()];
    cfg.sync.exclude_projects = vec!["project100*".into()];
    let filtered = syncer(&cfg, &s.clients, "a", &metrics)
        .discover()
        .await
        .unwrap();
    // project10, project101..109, project1010..1049 minus project100, project1000..1009
    assert_eq!(filtered.len(), 1 + 9 + 40);
    assert!(!filtered.iter().any(|p| p.starts_with("topics/project100")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_is_followed_to_success_and_recorded() {
    let s = setup(3, day(5)).await;
    let metrics = Metrics::new().unwrap();
    let sy = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = sy
        .run_date(day(5), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = store(&s).get(day(5)).await.unwrap().unwrap().value;
    assert_eq!(claim.status, ClaimStatus::Success);
    assert_eq!(claim.attempts, 1);
    assert_eq!(claim.projects, 3);
    assert_eq!(claim.chunks.len(), 1);
    assert_eq!(claim.chunks[0].status, Some(ExecStatus::Success));
    assert!(
        claim.chunks[0]
            .execution_arn
            .as_deref()
            .unwrap()
            .contains("/execution/exec-")
    );
    // The date and its lookback day (late files of the 4th land in the 4th's partitions).
    assert_eq!(claim.window, vec![day(4), day(5)]);
    assert_eq!(
        claim.chunks[0].filter,
        "/topics/project0/year=2024/month=03/day=04/*|/topics/project1/year=2024/month=03/day=04/*|/topics/project2/year=2024/month=03/day=04/*|\
         /topics/project0/year=2024/month=03/day=05/*|/topics/project1/year=2024/month=03/day=05/*|/topics/project2/year=2024/month=03/day=05/*"
    );
    assert_eq!(metrics.sync.runs(SyncResult::Success), 1);
    assert!(metrics.sync.last_success() > 0);
    assert_eq!(metrics.sync.filter_patterns(), 6);
    assert_eq!(metrics.sync.executions_in_progress(), 0);
    // A second run of the same date is a no-op.
    let again = sy
        .run_date(day(5), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(again, DateOutcome::Skipped { .. }), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_racing_for_a_date_start_exactly_one_execution() {
    let s = setup(2, day(6)).await;
    let metrics = Metrics::new().unwrap();
    let a = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let b = syncer(&s.cfg, &s.clients, "pod-b", &metrics);
    let token = CancellationToken::new();
    let (ra, rb) = tokio::join!(
        a.run_date(day(6), WAIT, &token),
        b.run_date(day(6), WAIT, &token)
    );
    let outcomes = [ra.unwrap(), rb.unwrap()];
    let successes = outcomes
        .iter()
        .filter(|o| matches!(o, DateOutcome::Success { .. }))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, DateOutcome::Skipped { .. }))
        .count();
    assert_eq!((successes, skipped), (1, 1), "{outcomes:?}");
    let claim = store(&s).get(day(6)).await.unwrap().unwrap().value;
    assert_eq!(claim.attempts, 1);
    assert_eq!(
        claim
            .chunks
            .iter()
            .filter(|c| c.execution_arn.is_some())
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_running_execution_instead_of_starting_another() {
    let mut s = setup(2, day(7)).await;
    s.cfg.sync.claim_ttl = Duration::from_millis(300);
    let metrics = Metrics::new().unwrap();
    let first = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let started = first
        .run_date(day(7), NO_WAIT, &CancellationToken::new())
        .await
        .unwrap();
    let DateOutcome::Started { execution_arn } = started else {
        panic!("{started:?}")
    };
    // Another replica sees a fresh claim held by pod-a and keeps off.
    let other = syncer(&s.cfg, &s.clients, "pod-b", &metrics);
    let out = other
        .run_date(day(7), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        out,
        DateOutcome::Skipped {
            reason: "being synced by pod-a".into()
        }
    );
    // pod-a restarts (same holder id, new process): the claim is its own only once it is
    // stale, since the first process might still be alive. Then it follows the recorded
    // execution.
    wait_stale(&s, day(7)).await;
    let restarted = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = restarted
        .run_date(day(7), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = store(&s).get(day(7)).await.unwrap().unwrap().value;
    assert_eq!(
        claim.chunks[0].execution_arn.as_deref(),
        Some(execution_arn.as_str())
    );
    assert_eq!(claim.attempts, 1, "no new attempt was started");
}

/// Issue 23 item 11: `kubectl exec … sync --date D` in the daemon's pod shares its host
/// name. It must not "resume" the daemon's live claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_holder_in_another_process_does_not_steal_a_live_claim() {
    let s = setup(2, day(9)).await;
    let metrics = Metrics::new().unwrap();
    let daemon = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let DateOutcome::Started { .. } = daemon
        .run_date(day(9), NO_WAIT, &CancellationToken::new())
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    let before = store(&s).get(day(9)).await.unwrap().unwrap().value;
    let exec = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = exec
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        out,
        DateOutcome::Skipped {
            reason: "being synced by pod-a".into()
        }
    );
    let after = store(&s).get(day(9)).await.unwrap().unwrap().value;
    assert_eq!(
        after.holder_nonce, before.holder_nonce,
        "the claim stays the daemon's"
    );
    assert_eq!(after.status, ClaimStatus::Running);
    // The daemon's own process still resumes it.
    let out = daemon
        .run_date(day(9), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_claim_is_taken_over_and_its_execution_followed() {
    let s = setup(2, day(8)).await;
    let metrics = Metrics::new().unwrap();
    let dead = syncer(&s.cfg, &s.clients, "pod-dead", &metrics);
    let DateOutcome::Started { execution_arn } = dead
        .run_date(
            day(8),
            RunOpts {
                force: false,
                wait: false,
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    let mut cfg = s.cfg.clone();
    cfg.sync.claim_ttl = Duration::from_millis(200);
    let ttl = chrono::Duration::from_std(cfg.sync.claim_ttl).unwrap();
    eventually(
        Duration::from_secs(10),
        "the dead pod's claim to go stale",
        || async {
            let claim = store(&s).get(day(8)).await.unwrap().unwrap().value;
            chrono::Utc::now() - claim.updated_at > ttl
        },
    )
    .await;
    let heir = syncer(&cfg, &s.clients, "pod-heir", &metrics);
    let out = heir
        .run_date(day(8), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = store(&s).get(day(8)).await.unwrap().unwrap().value;
    assert_eq!(claim.holder, "pod-heir");
    assert_eq!(
        claim.chunks[0].execution_arn.as_deref(),
        Some(execution_arn.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_day_is_caught_up_oldest_first() {
    let s = setup(2, day(10)).await;
    let names = vec!["project0".to_string(), "project1".to_string()];
    s.add_day(&names, day(11)).await;
    s.add_day(&names, day(12)).await;
    let metrics = Metrics::new().unwrap();
    let sy = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let token = CancellationToken::new();
    // The 10th ran; the daemon was down on the 11th; now the 12th is due.
    assert!(matches!(
        sy.run_date(day(10), WAIT, &token).await.unwrap(),
        DateOutcome::Success { .. }
    ));
    let catch_up = dates_to_run(&sy.store, day(12), &s.cfg.sync).await.unwrap();
    assert_eq!(catch_up.dates, vec![day(11), day(12)]);
    let tenth = store(&s).get(day(10)).await.unwrap().unwrap().value;
    assert_eq!(catch_up.last_success_at, Some(tenth.updated_at));
    for d in catch_up.dates {
        let out = sy.run_date(d, WAIT, &token).await.unwrap();
        assert!(matches!(out, DateOutcome::Success { .. }), "{d}: {out:?}");
    }
    let next = dates_to_run(&sy.store, day(13), &s.cfg.sync).await.unwrap();
    assert_eq!(next.dates, vec![day(13)]);
    assert!(next.last_success_at > Some(tenth.updated_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_over_the_limit_run_as_consecutive_executions() {
    let mut s = setup(5, day(14)).await;
    s.cfg.sync.lookback_days = 0;
    let metrics = Metrics::new().unwrap();
    let mut sy = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    // Each pattern is 46 characters; a limit of 100 fits two per filter.
    sy.max_filter_len = 100;
    let out = sy
        .run_date(day(14), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = store(&s).get(day(14)).await.unwrap().unwrap().value;
    assert_eq!(claim.chunks.len(), 3);
    assert!(claim.chunks.iter().all(|c| c.filter.len() <= 100));
    assert_eq!(claim.chunks.iter().map(|c| c.patterns).sum::<usize>(), 5);
    let arns: std::collections::HashSet<_> = claim
        .chunks
        .iter()
        .map(|c| c.execution_arn.clone().unwrap())
        .collect();
    assert_eq!(arns.len(), 3, "one execution per filter");
    assert!(
        claim
            .chunks
            .iter()
            .all(|c| c.status == Some(ExecStatus::Success))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_sync_reports_its_patterns() {
    let mut s = setup(3, day(16)).await;
    s.cfg.sync.lookback_days = 0;
    s.cfg.sync.claim_ttl = Duration::from_millis(300);
    let first = syncer(&s.cfg, &s.clients, "pod-a", &Metrics::new().unwrap());
    let started = first
        .run_date(day(16), NO_WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(
        matches!(started, DateOutcome::Started { .. }),
        "{started:?}"
    );
    // The restarted process has fresh metrics; resuming must not leave the gauge at 0.
    wait_stale(&s, day(16)).await;
    let metrics = Metrics::new().unwrap();
    let restarted = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = restarted
        .run_date(day(16), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    assert_eq!(metrics.sync.filter_patterns(), 3);
}

/// A day with no project left after the globs is its own result: not a success, retried
/// later, counted as `empty`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_with_nothing_to_sync_is_empty_not_a_success() {
    let mut s = setup(2, day(20)).await;
    s.cfg.sync.include_projects = vec!["vehicle-*".into()];
    let metrics = Metrics::new().unwrap();
    let sy = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = sy
        .run_date(day(20), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out, DateOutcome::Empty);
    assert_eq!(metrics.sync.runs(SyncResult::Empty), 1);
    assert_eq!(metrics.sync.runs(SyncResult::Success), 0);
    let claim = store(&s).get(day(20)).await.unwrap().unwrap().value;
    assert_eq!(claim.status, ClaimStatus::Empty);
    assert!(claim.retry_at.is_some(), "{claim:?}");
    let why = claim.error.unwrap();
    assert!(why.contains("sync.include_projects"), "{why}");
    assert!(
        why.contains(&format!("s3://{}/topics/", s.cfg.source.bucket)),
        "{why}"
    );
    assert_eq!(out.to_json(day(20))["result"], "empty");

    // With the glob fixed, the retry (forced here: it is not due yet) syncs the projects.
    s.cfg.sync.include_projects = vec!["project*".into()];
    let sy = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = sy
        .run_date(
            day(20),
            RunOpts {
                force: true,
                wait: true,
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(matches!(out, DateOutcome::Success { .. }), "{out:?}");
    let claim = store(&s).get(day(20)).await.unwrap().unwrap().value;
    assert_eq!((claim.status, claim.attempts), (ClaimStatus::Success, 2));
}

/// Issue 23 item 5: projects exist but every one of the date's partitions is empty (the
/// writer is late). That is `empty`, retried later, never a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_whose_partitions_are_all_empty_is_empty_not_a_success() {
    let mut s = setup(2, day(22)).await;
    s.cfg.sync.lookback_days = 0;
    let metrics = Metrics::new().unwrap();
    let sy = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = sy
        .run_date(day(25), WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out, DateOutcome::Empty);
    let claim = store(&s).get(day(25)).await.unwrap().unwrap().value;
    assert_eq!(claim.status, ClaimStatus::Empty);
    assert!(claim.retry_at.is_some(), "{claim:?}");
    let why = claim.error.unwrap();
    assert!(why.contains("partition(s) is empty"), "{why}");
    assert_eq!(metrics.sync.runs(SyncResult::Empty), 1);
    assert_eq!(metrics.sync.runs(SyncResult::Success), 0);
}

/// Issue 23 item 4: a plan error (a project whose name DataSync's filter cannot carry) uses
/// up an attempt and sets a retry time, instead of leaving no trace and being retried every
/// minute forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_error_counts_an_attempt_and_is_retried_later() {
    let s = setup(1, day(23)).await;
    put(
        &s.s3,
        &s.cfg.source.bucket,
        "topics/a|b/year=2024/month=03/day=23/x.json",
        "{}",
    )
    .await;
    let sy = syncer(&s.cfg, &s.clients, "pod-a", &Metrics::new().unwrap());
    let err = sy
        .run_date(day(23), WAIT, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a|b"), "{err}");
    let claim = store(&s).get(day(23)).await.unwrap().unwrap().value;
    assert_eq!((claim.status, claim.attempts), (ClaimStatus::Failed, 1));
    assert!(claim.retry_at.is_some(), "{claim:?}");
    assert!(claim.error.unwrap().contains("a|b"));
    // Retried (forced: not due yet), it is attempt 2.
    let _ = sy
        .run_date(
            day(23),
            RunOpts {
                force: true,
                wait: true,
            },
            &CancellationToken::new(),
        )
        .await;
    let claim = store(&s).get(day(23)).await.unwrap().unwrap().value;
    assert_eq!((claim.status, claim.attempts), (ClaimStatus::Failed, 2));
}

/// Issue 23 item 2: the holder was killed mid-execution and a new pod (a new host name, as
/// after a rollout) starts at once. The fresh claim is held by the dead pod; the daemon wakes
/// when it goes stale, takes it over and finishes the date, instead of waiting for the next
/// fire (a year away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_claim_is_taken_over_once_stale_not_at_the_next_fire() {
    use s3_reconciler::config::Schedule;
    let schedule = Schedule::parse("0 0 0 1 1 *").unwrap();
    let tz = chrono_tz::Asia::Seoul;
    let fired = schedule.previous_before(tz, chrono::Utc::now()).unwrap();
    let target = s3_reconciler::sync::plan::target_date(fired, tz, 1);
    let mut s = setup(2, target).await;
    s.cfg.sync.schedule = schedule;
    s.cfg.sync.catch_up_days = 0;
    s.cfg.sync.claim_ttl = Duration::from_secs(2);
    let dead = syncer(&s.cfg, &s.clients, "pod-dead", &Metrics::new().unwrap());
    let started = dead
        .run_date(target, NO_WAIT, &CancellationToken::new())
        .await
        .unwrap();
    assert!(
        matches!(started, DateOutcome::Started { .. }),
        "{started:?}"
    );
    let mut cfg = s.cfg.clone();
    cfg.state.holder_id = "pod-new".into();
    let d = Daemon::start(cfg).await;
    eventually(
        Duration::from_secs(30),
        "the new pod to finish the date",
        || async {
            let c = store(&s).get(target).await.unwrap().unwrap().value;
            c.status == ClaimStatus::Success
        },
    )
    .await;
    let claim = store(&s).get(target).await.unwrap().unwrap().value;
    assert_eq!((claim.holder.as_str(), claim.attempts), ("pod-new", 1));
    d.stop().await;
}

/// A rolling update runs two versions against the same claims. A claim written by a newer
/// version (a higher `schema`) is refused with an error naming the document and both versions,
/// never misread, and nothing is started for its date; one written before the field existed
/// reads as version 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_a_newer_version_is_refused_not_misread() {
    let s = setup(2, day(5)).await;
    let metrics = Metrics::new().unwrap();
    let sy = syncer(&s.cfg, &s.clients, "pod-a", &metrics);
    let out = sy.run_date(day(5), WAIT, &CancellationToken::new()).await;
    assert!(matches!(out, Ok(DateOutcome::Success { .. })), "{out:?}");
    let uri = store(&s).uri(day(5));
    let key = uri
        .strip_prefix(&format!("s3://{}/", s.state))
        .unwrap()
        .to_string();
    let read = || async {
        let out =
            s.s3.get_object()
                .bucket(&s.state)
                .key(&key)
                .send()
                .await
                .unwrap();
        String::from_utf8(out.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
    };
    let write = |body: String| async {
        s.s3.put_object()
            .bucket(&s.state)
            .key(&key)
            .body(body.into_bytes().into())
            .send()
            .await
            .unwrap();
    };
    let written = read().await;
    assert!(
        written.trim_start().starts_with("{\n  \"schema\": 1,"),
        "the schema comes first: {written}"
    );

    // A newer version rewrote the claim in a format this one does not know.
    let mut doc: serde_json::Value = serde_json::from_str(&written).unwrap();
    doc["schema"] = 2.into();
    doc["status"] = "some-new-status".into();
    write(doc.to_string()).await;
    let starts = || {
        metrics
            .aws
            .calls(s3_reconciler::labels::DataSyncOp::StartTaskExecution)
    };
    let started = starts();
    let forced = s3_reconciler::sync::runner::RunOpts {
        force: true,
        wait: true,
    };
    let err = sy
        .run_date(day(5), forced, &CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&uri) && err.contains("schema 2") && err.contains("newer than the 1"),
        "{err}"
    );
    assert_eq!(
        starts(),
        started,
        "nothing started for a claim it cannot read"
    );
    assert!(
        read().await.contains("some-new-status"),
        "the newer claim is left as it is"
    );

    // Written before `schema` existed: the format of version 1.
    doc.as_object_mut().unwrap().remove("schema");
    doc["status"] = "success".into();
    write(doc.to_string()).await;
    let claim = store(&s).get(day(5)).await.unwrap().unwrap().value;
    assert_eq!(claim.status, ClaimStatus::Success);
}
