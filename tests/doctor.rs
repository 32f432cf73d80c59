//! `doctor` against the emulator: a correctly wired world passes, and each misconfiguration
//! fails and names its check. Inside the daemon the same checks make the dependent task not
//! ready while the world is broken, and ready again once it is fixed, without a restart. What
//! the emulator cannot model (a task schedule, task Includes, a 403 on a missing claim) goes
//! through aws-smithy-mocks.

mod common;

use s3_reconciler::labels::{CheckId, CheckStatus, Label};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_datasync::operation::describe_location_s3::DescribeLocationS3Output;
use aws_sdk_datasync::operation::describe_task::DescribeTaskOutput;
use aws_sdk_datasync::types::{
    FilterRule, FilterType, Options, TaskSchedule, TaskStatus, TransferMode,
};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::BucketVersioningStatus;
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use common::*;
use s3_reconciler::aws::Clients;
use s3_reconciler::config::{Config, FilterMode};
use s3_reconciler::doctor::{Check, Doctor};
use s3_reconciler::metrics::Metrics;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_s3-reconciler");

/// Runs `doctor --format json`: (exit code, check id → the check's JSON).
fn doctor(cfg: &tempfile::NamedTempFile, env: &[(&str, &str)]) -> (i32, BTreeMap<String, Value>) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .args(["doctor", "--format", "json"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checks = stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["check"].as_str().unwrap().to_string(), v)
        })
        .collect();
    (out.status.code().unwrap_or(-1), checks)
}

fn with_status(checks: &BTreeMap<String, Value>, status: &str) -> Vec<String> {
    checks
        .iter()
        .filter(|(_, c)| c["status"] == status)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Exactly `id` fails, and the run exits 1.
#[track_caller]
fn only_failing(got: &(i32, BTreeMap<String, Value>), id: &str) -> Value {
    let (code, checks) = got;
    assert_eq!(
        with_status(checks, "fail"),
        vec![id.to_string()],
        "{checks:#?}"
    );
    assert_eq!(*code, 1);
    let c = checks[id].clone();
    assert!(
        c["fix"].as_str().is_some_and(|f| !f.is_empty()),
        "a failing check says what to do: {c}"
    );
    c
}

/// Every check that applies to the default configuration (mode `all-versions`), in the
/// doctor's order.
const ALL: [&str; 14] = [
    "source.bucket",
    "target.bucket",
    "source.versioning",
    "target.versioning",
    "target.delete",
    "source.notification",
    "queue.exists",
    "queue.redrive",
    "datasync.task",
    "datasync.locations",
    "datasync.schedule",
    "datasync.filters",
    "datasync.options",
    "state.bucket",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correctly_wired_world_passes_every_check() {
    let w = Wired::new().await;
    let cfg = w.toml("");
    let (code, checks) = doctor(&cfg, &[]);
    assert_eq!(checks.len(), ALL.len(), "{checks:#?}");
    for id in ALL {
        assert_eq!(checks[id]["status"], "pass", "{:#?}", checks[id]);
        assert!(checks[id].get("fix").is_none());
    }
    // The mirror-versions checks come after source.notification and apply only there.
    let mut every = ALL.to_vec();
    every.splice(6..6, ["source.replication", "target.lifecycle"]);
    assert_eq!(
        CheckId::ALL.iter().map(|c| c.label()).collect::<Vec<_>>(),
        every,
        "the ids are the issue's, in this order"
    );
    assert_eq!(code, 0);
    assert!(
        checks["source.notification"]["detail"]
            .as_str()
            .unwrap()
            .contains(&w.queue_arn),
        "{:?}",
        checks["source.notification"]
    );

    // Text: a line per check and a count.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg.path())
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("14 check(s): 14 pass, 0 warn, 0 fail"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("PASS  state.bucket")),
        "{text}"
    );

    // Only the checks the enabled tasks depend on run.
    let (code, sync_only) = doctor(&cfg, &[("S3R__PURGE__ENABLED", "false")]);
    assert_eq!(code, 0);
    assert_eq!(
        sync_only.keys().cloned().collect::<Vec<_>>(),
        [
            "datasync.filters",
            "datasync.locations",
            "datasync.options",
            "datasync.schedule",
            "datasync.task",
            "source.bucket",
            "state.bucket",
            "target.bucket"
        ]
    );
    let (code, purge_only) = doctor(&cfg, &[("S3R__SYNC__ENABLED", "false")]);
    assert_eq!(code, 0);
    assert_eq!(
        purge_only.keys().cloned().collect::<Vec<_>>(),
        [
            "queue.exists",
            "queue.redrive",
            "source.bucket",
            "source.notification",
            "source.versioning",
            "target.bucket",
            "target.delete",
            "target.versioning"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_suspended_on_either_side_fails_that_side() {
    let w = Wired::new().await;
    let cfg = w.toml("");
    set_versioning(&w.s3, &w.src, BucketVersioningStatus::Suspended).await;
    let c = only_failing(&doctor(&cfg, &[]), "source.versioning");
    assert!(c["detail"].as_str().unwrap().contains("Suspended"), "{c}");
    assert_eq!(c["resource"], format!("s3://{}", w.src));
    set_versioning(&w.s3, &w.src, BucketVersioningStatus::Enabled).await;
    set_versioning(&w.s3, &w.tgt, BucketVersioningStatus::Suspended).await;
    let c = only_failing(&doctor(&cfg, &[]), "target.versioning");
    assert_eq!(c["resource"], format!("s3://{}", w.tgt));

    // A bucket that never had versioning.
    let plain = unique("plain");
    create_bucket(&w.s3, &plain, false).await;
    set_versioning(&w.s3, &w.tgt, BucketVersioningStatus::Enabled).await;
    let c = only_failing(
        // (sync off: the task's destination is the other bucket)
        &doctor(
            &cfg,
            &[
                ("S3R__TARGET__BUCKET", &plain),
                ("S3R__SYNC__ENABLED", "false"),
            ],
        ),
        "target.versioning",
    );
    assert!(c["detail"].as_str().unwrap().contains("never"), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_missing_or_sent_elsewhere_fails_source_notification() {
    let w = Wired::new().await;
    let cfg = w.toml("");
    notify(&w.s3, &w.src, &[]).await;
    let c = only_failing(&doctor(&cfg, &[]), "source.notification");
    assert!(
        c["detail"].as_str().unwrap().contains(
            "no notification sends s3:ObjectRemoved:Delete, s3:LifecycleExpiration:Delete"
        ),
        "{c}"
    );

    // Pointing at another queue: the detail names where the events go instead.
    let (other, _) = queue_with_dlq(&w.sqs, 5).await;
    let other_arn = queue_arn(&w.sqs, &other).await;
    notify(
        &w.s3,
        &w.src,
        &[(
            &other_arn,
            &["s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"],
        )],
    )
    .await;
    let c = only_failing(&doctor(&cfg, &[]), "source.notification");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.contains(&other_arn), "{c}");
    assert!(c["fix"].as_str().unwrap().contains(&w.queue_arn), "{c}");

    // Events that are not the permanent delete do not count.
    notify(
        &w.s3,
        &w.src,
        &[(
            &w.queue_arn,
            &["s3:ObjectCreated:*", "s3:ObjectRemoved:DeleteMarkerCreated"],
        )],
    )
    .await;
    only_failing(&doctor(&cfg, &[]), "source.notification");

    // Family wildcards do.
    notify(
        &w.s3,
        &w.src,
        &[(
            &w.queue_arn,
            &["s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"],
        )],
    )
    .await;
    let (code, checks) = doctor(&cfg, &[]);
    assert_eq!(code, 0, "{checks:#?}");
    assert_eq!(checks["source.notification"]["status"], "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_without_a_dead_letter_queue_fails_queue_redrive() {
    let w = Wired::new().await;
    let bare = w
        .sqs
        .create_queue()
        .queue_name(unique("bare"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let bare_arn = queue_arn(&w.sqs, &bare).await;
    notify(&w.s3, &w.src, &[(&bare_arn, REMOVAL_EVENTS)]).await;
    let c = only_failing(
        &doctor(&w.toml(""), &[("S3R__PURGE__QUEUE_URL", &bare)]),
        "queue.redrive",
    );
    assert!(
        c["detail"].as_str().unwrap().contains("no redrive policy"),
        "{c}"
    );
    assert_eq!(c["resource"], bare);

    // A queue that does not exist fails queue.exists, and the notification cannot be matched.
    let gone = format!("{}-gone", bare);
    let (code, checks) = doctor(&w.toml(""), &[("S3R__PURGE__QUEUE_URL", &gone)]);
    assert_eq!(code, 1);
    assert_eq!(
        with_status(&checks, "fail"),
        ["queue.exists", "queue.redrive", "source.notification"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_on_another_bucket_or_subdirectory_fails_datasync_locations() {
    let w = Wired::new().await;
    let elsewhere = unique("elsewhere");
    create_bucket(&w.s3, &elsewhere, true).await;
    let task = datasync_task(&elsewhere, &w.tgt).await;
    let c = only_failing(
        &doctor(&w.toml(""), &[("S3R__SYNC__TASK_ARN", &task)]),
        "datasync.locations",
    );
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "source location's bucket is {elsewhere}, not {}",
            w.src
        )),
        "{c}"
    );
    assert!(detail.contains("0 files"), "{c}");

    let task = datasync_task_at(&w.src, &w.tgt, "/topics/").await;
    let c = only_failing(
        &doctor(&w.toml(""), &[("S3R__SYNC__TASK_ARN", &task)]),
        "datasync.locations",
    );
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("subdirectory is /topics/"),
        "{c}"
    );
    // Configured to match, it passes.
    let (code, checks) = doctor(
        &w.toml(""),
        &[
            ("S3R__SYNC__TASK_ARN", &task),
            ("S3R__SYNC__LOCATION_SUBDIRECTORY", "/topics/"),
        ],
    );
    assert_eq!(code, 0, "{checks:#?}");

    // A task that does not exist fails datasync.task, and the checks that need it say so.
    // Well-formed, and never created: the emulator numbers its tasks from 1 (task-0000…1,
    // task-0000…2), so a neighbouring id would name this test's other tasks.
    let stem = &w.task[..w.task.rfind("/task-").expect("a task ARN")];
    let missing = format!("{stem}/task-{}", "f".repeat(17));
    let (code, checks) = doctor(&w.toml(""), &[("S3R__SYNC__TASK_ARN", &missing)]);
    assert_eq!(code, 1);
    assert_eq!(
        with_status(&checks, "fail"),
        [
            "datasync.filters",
            "datasync.locations",
            "datasync.options",
            "datasync.schedule",
            "datasync.task"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_buckets_fail_their_checks() {
    let w = Wired::new().await;
    let cfg = w.toml("");
    let c = only_failing(
        &doctor(&cfg, &[("S3R__STATE__BUCKET", &unique("no-state"))]),
        "state.bucket",
    );
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("cannot write a claim"),
        "{c}"
    );

    // A missing source bucket is caught before anything runs.
    let (code, checks) = doctor(&cfg, &[("S3R__SOURCE__BUCKET", &unique("no-source"))]);
    assert_eq!(code, 1);
    let c = &checks["source.bucket"];
    assert_eq!(c["status"], "fail");
    assert_eq!(c["detail"], "the bucket does not exist");
    assert_eq!(checks["source.versioning"]["status"], "fail");
}

#[test]
fn a_bad_configuration_exits_64_before_any_check() {
    let f = config_file("[source]\nbucket = \"Bad_Bucket\"\n");
    let (code, checks) = doctor(&f, &[]);
    assert_eq!(code, 64);
    assert!(checks.is_empty());
}

/// The start-up preflight: the purge is not ready while its notification is missing, and
/// ready once it is fixed, in the same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_preflight_check_makes_its_task_not_ready_until_fixed() {
    let w = Wired::new().await;
    notify(&w.s3, &w.src, &[]).await;
    let mut cfg = w.config();
    cfg.preflight.interval = Duration::from_millis(500);
    let d = Daemon::start(cfg).await;
    eventually(
        Duration::from_secs(30),
        "/readyz 503 naming source.notification",
        || async {
            matches!(http_get(d.port, "/readyz").await,
                Some((503, body)) if body.contains("check source.notification failed"))
        },
    )
    .await;
    let failing = |d: &Daemon, id: &str| {
        d.metrics
            .preflight
            .status(CheckId::from_label(id).expect(id), CheckStatus::Fail)
    };
    assert_eq!(failing(&d, "source.notification"), 1);
    assert_eq!(failing(&d, "datasync.task"), 0);
    let (_, status) = http_get(d.port, "/status").await.unwrap();
    let status: Value = serde_json::from_str(&status).unwrap();
    let checks = status["preflight"]["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "source.notification" && c["status"] == "fail"),
        "{status:#}"
    );
    // The sync does not depend on the notification.
    assert!(
        status["tasks"]["sync"]["reason"]
            .as_str()
            .is_none_or(|r| !r.contains("source.notification")),
        "{status:#}"
    );

    notify(&w.s3, &w.src, &[(&w.queue_arn, REMOVAL_EVENTS)]).await;
    eventually(
        Duration::from_secs(30),
        "/readyz 200 after the fix",
        || async { matches!(http_get(d.port, "/readyz").await, Some((200, _))) },
    )
    .await;
    assert_eq!(failing(&d, "source.notification"), 0);
    assert_eq!(
        d.metrics
            .preflight
            .status(CheckId::SourceNotification, CheckStatus::Pass),
        1
    );
    assert!(d.metrics.preflight.last_run() > 0);
    d.stop().await;
}

// ---- What the emulator cannot model ----

const TASK: &str = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0";
const SRC_LOC: &str = "arn:aws:datasync:ap-northeast-2:111111111111:location/loc-0000000000000000a";
const DST_LOC: &str = "arn:aws:datasync:ap-northeast-2:111111111111:location/loc-0000000000000000b";

fn sync_only() -> Config {
    let mut c = Config::default();
    c.source.bucket = "src-bucket".into();
    c.source.account.region = REGION.into();
    c.target = c.source.clone();
    c.target.bucket = "tgt-bucket".into();
    c.sync.enabled = true;
    c.sync.task_arn = TASK.into();
    c.state.bucket = "state-bucket".into();
    c
}

/// A DataSync client answering DescribeTask with `task` and the locations with the
/// configuration's buckets.
fn datasync(task: DescribeTaskOutput) -> aws_sdk_datasync::Client {
    let describe = mock!(aws_sdk_datasync::Client::describe_task).then_output(move || {
        let mut t = task.clone();
        t.source_location_arn = Some(SRC_LOC.into());
        t.destination_location_arn = Some(DST_LOC.into());
        t
    });
    let location =
        mock!(aws_sdk_datasync::Client::describe_location_s3).then_compute_output(|req| {
            let bucket = match req.location_arn() {
                Some(SRC_LOC) => "src-bucket",
                _ => "tgt-bucket",
            };
            DescribeLocationS3Output::builder()
                .location_uri(format!("s3://{bucket}/"))
                .build()
        });
    mock_client!(
        aws_sdk_datasync,
        RuleMode::MatchAny,
        &[&describe, &location]
    )
}

/// An S3 client for the buckets and the state probe; a missing claim reads as `missing`.
fn s3(missing: u16) -> aws_sdk_s3::Client {
    let list = mock!(aws_sdk_s3::Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build());
    let written: Arc<Mutex<Vec<u8>>> = Arc::default();
    let w = written.clone();
    let put = mock!(aws_sdk_s3::Client::put_object).then_compute_response(move |req| {
        if req.if_none_match().is_some() {
            return MockResponse::Http(error(412, "PreconditionFailed"));
        }
        *w.lock().unwrap() = req.body().bytes().unwrap_or_default().to_vec();
        MockResponse::Output(PutObjectOutput::builder().e_tag("\"e1\"").build())
    });
    let get = mock!(aws_sdk_s3::Client::get_object).then_compute_response(move |req| {
        if req.key().unwrap_or_default().contains("/missing-") {
            return MockResponse::Http(error(
                missing,
                if missing == 403 {
                    "AccessDenied"
                } else {
                    "NoSuchKey"
                },
            ));
        }
        MockResponse::Output(
            GetObjectOutput::builder()
                .body(ByteStream::from(written.lock().unwrap().clone()))
                .e_tag("\"e1\"")
                .build(),
        )
    });
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, &[&list, &put, &get], |c| c
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()))
}

fn error(status: u16, code: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"#
        )),
    )
}

async fn run(cfg: &Config, task: DescribeTaskOutput, missing: u16) -> BTreeMap<CheckId, Check> {
    let s3 = s3(missing);
    let clients = Clients {
        source: s3.clone(),
        target: s3,
        sqs: mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[]),
        datasync: datasync(task),
    };
    Doctor::new(Arc::new(cfg.clone()), clients, Metrics::new().unwrap())
        .run()
        .await
        .into_iter()
        .map(|c| (c.check, c))
        .collect()
}

fn available() -> aws_sdk_datasync::operation::describe_task::builders::DescribeTaskOutputBuilder {
    DescribeTaskOutput::builder()
        .task_arn(TASK)
        .status(TaskStatus::Available)
}

#[tokio::test]
async fn the_seed_console_setup_with_a_schedule_of_its_own_fails_in_execution_mode() {
    let cfg = sync_only();
    let checks = run(&cfg, available().build(), 404).await;
    assert!(
        checks.values().all(|c| c.status == CheckStatus::Pass),
        "{checks:#?}"
    );
    let scheduled = available()
        .schedule(
            TaskSchedule::builder()
                .schedule_expression("cron(0 16 * * ? *)")
                .build()
                .unwrap(),
        )
        .build();
    let c = &run(&cfg, scheduled.clone(), 404).await[&CheckId::DatasyncSchedule];
    assert_eq!(c.status, CheckStatus::Fail, "{c:?}");
    assert!(c.detail.contains("cron(0 16 * * ? *)"), "{c:?}");
    assert!(c.detail.contains("copies everything"), "{c:?}");

    // In task mode the scheduled run reuses the last Includes: a warning.
    let mut task_mode = cfg.clone();
    task_mode.sync.filter_mode = FilterMode::Task;
    let c = &run(&task_mode, scheduled.clone(), 404).await[&CheckId::DatasyncSchedule];
    assert_eq!(c.status, CheckStatus::Warn, "{c:?}");

    // A disabled schedule does not run.
    let disabled = available()
        .schedule(
            TaskSchedule::builder()
                .schedule_expression("cron(0 16 * * ? *)")
                .status(aws_sdk_datasync::types::ScheduleStatus::Disabled)
                .build()
                .unwrap(),
        )
        .build();
    let c = &run(&cfg, disabled, 404).await[&CheckId::DatasyncSchedule];
    assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
}

#[tokio::test]
async fn task_includes_excludes_and_transfer_mode_are_reported() {
    let cfg = sync_only();
    let rule = |v: &str| {
        FilterRule::builder()
            .filter_type(FilterType::SimplePattern)
            .value(v)
            .build()
    };
    let task = available()
        .includes(rule("/topics/project1/year=2024/month=03/day=09/*"))
        .excludes(rule("*/_tmp/*"))
        .options(Options::builder().transfer_mode(TransferMode::All).build())
        .build();
    let checks = run(&cfg, task, 404).await;
    let f = &checks[&CheckId::DatasyncFilters];
    assert_eq!(f.status, CheckStatus::Warn, "{f:?}");
    assert!(
        f.detail
            .contains("/topics/project1/year=2024/month=03/day=09/*"),
        "{f:?}"
    );
    assert!(f.detail.contains("Excludes */_tmp/*"), "{f:?}");
    let o = &checks[&CheckId::DatasyncOptions];
    assert_eq!(o.status, CheckStatus::Warn, "{o:?}");
    assert!(o.detail.contains("TransferMode ALL"), "{o:?}");
    // Warnings do not fail the run.
    assert!(s3_reconciler::doctor::healthy(
        &checks.into_values().collect::<Vec<_>>()
    ));
}

#[tokio::test]
async fn a_missing_claim_answering_access_denied_fails_state_bucket() {
    let cfg = sync_only();
    let checks = run(&cfg, available().build(), 403).await;
    let c = &checks[&CheckId::StateBucket];
    assert_eq!(c.status, CheckStatus::Fail, "{c:?}");
    assert!(c.detail.contains("AccessDenied"), "{c:?}");
    let fix = c.fix.as_deref().unwrap();
    assert!(
        fix.contains("s3:ListBucket on arn:aws:s3:::state-bucket"),
        "{fix}"
    );
    assert!(fix.contains("no s3:prefix condition"), "{fix}");
    let failing: Vec<_> = checks
        .values()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.check)
        .collect();
    assert_eq!(failing, [CheckId::StateBucket]);
}

/// `mirror-versions` deletes only replicas, so it needs replication to the target over its
/// scope (`source.replication`), and it warns about a target lifecycle that expires current
/// versions there (`target.lifecycle`). Neither check runs in `when-source-empty`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_versions_needs_replication_over_its_scope_and_warns_of_an_expiring_target() {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, Destination, ExpirationStatus, LifecycleExpiration,
        LifecycleRule, LifecycleRuleFilter, ReplicationConfiguration, ReplicationRule,
        ReplicationRuleFilter, ReplicationRuleStatus,
    };
    let w = Wired::new().await;
    let cfg = w.toml("");
    let mirror = [
        ("S3R__PURGE__MODE", "mirror-versions"),
        ("S3R__PURGE__PREFIXES", "mirror/"),
    ];
    let (_, checks) = doctor(&cfg, &[]);
    assert!(!checks.contains_key("source.replication"), "{checks:#?}");
    let got = doctor(&cfg, &mirror);
    let c = only_failing(&got, "source.replication");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("no replication configuration"),
        "{c}"
    );
    assert_eq!(got.1["target.lifecycle"]["status"], "pass");

    let rule = |prefix: &str| {
        ReplicationRule::builder()
            .id(format!("to-target-{prefix}"))
            .priority(1)
            .status(ReplicationRuleStatus::Enabled)
            .filter(ReplicationRuleFilter::builder().prefix(prefix).build())
            .delete_marker_replication(
                aws_sdk_s3::types::DeleteMarkerReplication::builder()
                    .status(aws_sdk_s3::types::DeleteMarkerReplicationStatus::Disabled)
                    .build(),
            )
            .destination(
                Destination::builder()
                    .bucket(format!("arn:aws:s3:::{}", w.tgt))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let replicate = |prefix: &str| {
        let (s3, src) = (w.s3.clone(), w.src.clone());
        let rule = rule(prefix);
        async move {
            s3.put_bucket_replication()
                .bucket(src)
                .replication_configuration(
                    ReplicationConfiguration::builder()
                        .role("arn:aws:iam::123456789012:role/replication")
                        .rules(rule)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }
    };
    // (The emulator drops a rule's filter prefix, answering every rule as whole-bucket: which
    // prefixes a rule covers is tested on the verdict, in src/doctor/eval/tests.rs.)
    replicate("").await;
    let (code, checks) = doctor(&cfg, &mirror);
    assert_eq!(
        checks["source.replication"]["status"], "pass",
        "{checks:#?}"
    );
    assert_eq!(code, 0);

    w.s3.put_bucket_lifecycle_configuration()
        .bucket(&w.tgt)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("retention")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .expiration(LifecycleExpiration::builder().days(1).build())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (code, checks) = doctor(&cfg, &mirror);
    let l = &checks["target.lifecycle"];
    assert_eq!(l["status"], "warn", "{l}");
    assert!(l["detail"].as_str().unwrap().contains("`retention`"), "{l}");
    assert_eq!(code, 0, "a warning does not fail the doctor");
}

/// A purge-only configuration for the mocked doctor.
fn purge_only() -> Config {
    let mut c = sync_only();
    c.sync.enabled = false;
    c.purge.enabled = true;
    c.purge.queue_url = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/q".into();
    c.purge.prefixes = vec!["topics/".into()];
    c
}

/// The doctor's checks with the target's DeleteObjects answered by `delete`.
async fn run_delete(cfg: &Config, delete: aws_smithy_mocks::Rule) -> BTreeMap<CheckId, Check> {
    let list = mock!(aws_sdk_s3::Client::list_object_versions)
        .then_output(|| ListObjectVersionsOutput::builder().build());
    let versioning = mock!(aws_sdk_s3::Client::get_bucket_versioning).then_output(|| {
        aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput::builder()
            .status(BucketVersioningStatus::Enabled)
            .build()
    });
    let notification =
        mock!(aws_sdk_s3::Client::get_bucket_notification_configuration).then_output(|| {
            aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput::builder().build()
        });
    let attrs = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_output(|| {
        aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput::builder().build()
    });
    let s3 = mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        &[&list, &versioning, &notification, &delete],
        |c| c.retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
    );
    let clients = Clients {
        source: s3.clone(),
        target: s3,
        sqs: mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&attrs]),
        datasync: mock_client!(aws_sdk_datasync, RuleMode::MatchAny, &[]),
    };
    Doctor::new(Arc::new(cfg.clone()), clients, Metrics::new().unwrap())
        .run()
        .await
        .into_iter()
        .map(|c| (c.check, c))
        .collect()
}

/// Issue 24 item 6: a policy without the delete permissions fails `target.delete`, whether S3
/// refuses the entry (DeleteObjects answers 200 with a per-entry AccessDenied) or the whole
/// request; the probe names a key that does not exist, under the purge's scope, and only its
/// `null` version.
#[tokio::test]
async fn a_target_that_refuses_deletes_fails_target_delete() {
    let cfg = purge_only();
    let refused = mock!(aws_sdk_s3::Client::delete_objects).then_compute_output(|req| {
        let o = &req.delete().unwrap().objects()[0];
        assert!(o.key().starts_with("topics/.s3-reconciler-probe/"), "{o:?}");
        assert_eq!(o.version_id(), Some("null"));
        aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput::builder()
            .errors(
                aws_sdk_s3::types::Error::builder()
                    .key(o.key())
                    .version_id("null")
                    .code("AccessDenied")
                    .message("Access Denied")
                    .build(),
            )
            .build()
    });
    let checks = run_delete(&cfg, refused).await;
    let c = &checks[&CheckId::TargetDelete];
    assert_eq!(c.status, CheckStatus::Fail, "{c:?}");
    assert!(c.detail.contains("AccessDenied"), "{c:?}");
    assert!(
        c.fix.as_deref().unwrap().contains("s3:DeleteObject"),
        "{c:?}"
    );

    let denied =
        mock!(aws_sdk_s3::Client::delete_objects).then_http_response(|| error(403, "AccessDenied"));
    let checks = run_delete(&cfg, denied).await;
    let c = &checks[&CheckId::TargetDelete];
    assert_eq!(c.status, CheckStatus::Fail, "{c:?}");
    assert!(c.detail.contains("denied"), "{c:?}");

    // Nothing to prove in a dry run.
    let mut dry = cfg.clone();
    dry.purge.dry_run = true;
    let never = mock!(aws_sdk_s3::Client::delete_objects)
        .then_compute_output(|_| panic!("a dry run sends no delete, not even a probe"));
    let checks = run_delete(&dry, never).await;
    assert!(!checks.contains_key(&CheckId::TargetDelete));
}
