//! `doctor`: checks that AWS is wired the way the configuration assumes, with read-only calls
//! on the customer's resources (and one probe document under the state prefix). The same
//! checks run inside the daemon at start-up and periodically ([`preflight`]).
//!
//! Only the checks the enabled tasks depend on run; each has an id ([`CheckId`]) that is also
//! its metric label. Verdicts are pure ([`eval`]); this module gathers the facts.

pub mod eval;
pub mod preflight;

use std::sync::Arc;

use aws_sdk_datasync::types::ScheduleStatus;
use aws_sdk_s3::types::{Event, FilterRuleName};

pub use eval::Check;
use eval::{CallError, Destination, Notification, StateProbe, TaskFacts};

use crate::aws::datasync::DataSync;
use crate::aws::s3::{Bucket, Condition, Put};
use crate::aws::sqs::Queue;
use crate::aws::{AwsError, Clients};
use crate::config::{Config, PurgeMode, parse_task_arn};
use crate::labels::{CheckId, CheckStatus, Task};
use crate::metrics::Metrics;

impl From<AwsError> for CallError {
    fn from(e: AwsError) -> Self {
        CallError {
            kind: e.kind,
            code: e.code.as_deref().map(str::to_string),
            bucket_region: e.bucket_region.as_deref().map(str::to_string),
            line: e.to_string(),
        }
    }
}

/// The tasks a check's failure makes not ready.
pub(crate) fn dependents(check: CheckId) -> &'static [Task] {
    use CheckId::*;
    match check {
        SourceBucket | TargetBucket => &[Task::Sync, Task::Purge, Task::Sweep],
        SourceVersioning | TargetVersioning => &[Task::Purge, Task::Sweep],
        SourceNotification | QueueExists | QueueRedrive => &[Task::Purge],
        SourceReplication | TargetLifecycle => &[Task::Purge, Task::Sweep],
        DatasyncTask | DatasyncLocations | DatasyncSchedule | DatasyncFilters | DatasyncOptions => {
            &[Task::Sync]
        }
        StateBucket => &[Task::Sync, Task::Sweep],
    }
}

/// Whether a check means anything in this configuration, whatever the tasks.
fn applies(check: CheckId, config: &Config) -> bool {
    match check {
        CheckId::SourceReplication | CheckId::TargetLifecycle => {
            config.purge.mode == PurgeMode::MirrorVersions
        }
        _ => true,
    }
}

/// The checks the enabled tasks depend on, in a stable order.
pub(crate) fn relevant(config: &Config) -> Vec<CheckId> {
    let enabled = |t: Task| match t {
        Task::Sync => config.sync.enabled,
        Task::Purge => config.purge.enabled,
        Task::Sweep => config.sweep.enabled,
        Task::Preflight => false,
    };
    CheckId::ALL
        .iter()
        .copied()
        .filter(|c| applies(*c, config) && dependents(*c).iter().any(|t| enabled(*t)))
        .collect()
}

/// Gathers facts and runs checks.
pub struct Doctor {
    config: Arc<Config>,
    clients: Clients,
    metrics: Metrics,
    holder: String,
}

impl Doctor {
    pub fn new(config: Arc<Config>, clients: Clients, metrics: Metrics) -> Self {
        Doctor {
            holder: crate::context::holder_id(&config.state.holder_id),
            config,
            clients,
            metrics,
        }
    }

    fn bucket(&self, client: &aws_sdk_s3::Client, name: &str) -> Bucket {
        Bucket::new(client.clone(), name, self.metrics.clone())
    }

    /// Runs every relevant check; the order is [`CheckId`]'s.
    pub async fn run(&self) -> Vec<Check> {
        let wanted = relevant(&self.config);
        let has = |c: CheckId| wanted.contains(&c);
        let (buckets, purge, sync, state, mirror) = tokio::join!(
            self.buckets(has(CheckId::SourceVersioning)),
            async {
                match has(CheckId::QueueExists) {
                    true => self.purge_checks().await,
                    false => Vec::new(),
                }
            },
            async {
                match has(CheckId::DatasyncTask) {
                    true => self.datasync_checks().await,
                    false => Vec::new(),
                }
            },
            async {
                match has(CheckId::StateBucket) {
                    true => vec![self.state_check().await],
                    false => Vec::new(),
                }
            },
            async {
                match has(CheckId::SourceReplication) {
                    true => self.mirror_checks().await,
                    false => Vec::new(),
                }
            },
        );
        let mut all: Vec<Check> = buckets
            .into_iter()
            .chain(purge)
            .chain(sync)
            .chain(state)
            .chain(mirror)
            .collect();
        all.retain(|c| has(c.check));
        all.sort_by_key(|c| CheckId::ALL.iter().position(|x| *x == c.check));
        all
    }

    async fn buckets(&self, versioning: bool) -> Vec<Check> {
        let c = &self.config;
        let mut out = Vec::new();
        for (check, vcheck, side, client, role) in [
            (
                CheckId::SourceBucket,
                CheckId::SourceVersioning,
                &c.source,
                &self.clients.source,
                "source",
            ),
            (
                CheckId::TargetBucket,
                CheckId::TargetVersioning,
                &c.target,
                &self.clients.target,
                "target",
            ),
        ] {
            let b = self.bucket(client, &side.bucket);
            let listed = b.probe().await.map_err(CallError::from);
            out.push(eval::bucket(
                check,
                &side.bucket,
                &side.account.region,
                role,
                listed,
            ));
            if versioning {
                let status = b.versioning().await.map_err(CallError::from);
                out.push(eval::versioning(vcheck, &side.bucket, status));
            }
        }
        out
    }

    async fn purge_checks(&self) -> Vec<Check> {
        let c = &self.config;
        let url = &c.purge.queue_url;
        let queue = Queue::new(self.clients.sqs.clone(), url, self.metrics.clone());
        let facts = queue.facts().await.map_err(CallError::from);
        let arn = facts.as_ref().ok().and_then(|f| f.arn.clone());
        let exists = eval::queue_exists(
            url,
            facts.clone().map(|f| f.arn.unwrap_or_else(|| "?".into())),
        );
        let redrive = eval::queue_redrive(
            url,
            facts.map(|f| (f.redrive_policy, f.visibility_timeout)),
            c.purge.visibility_timeout.as_secs(),
        );
        let source = self.bucket(&self.clients.source, &c.source.bucket);
        let facts = source
            .notifications()
            .await
            .map(|out| notifications(&out))
            .map_err(CallError::from);
        let notification = eval::notification(
            &c.source.bucket,
            facts,
            arn.as_deref(),
            &c.purge.events,
            &c.purge.prefixes,
        );
        vec![notification, exists, redrive]
    }

    async fn datasync_checks(&self) -> Vec<Check> {
        let c = &self.config;
        let arn = &c.sync.task_arn;
        let ds = DataSync::new(self.clients.datasync.clone(), arn, self.metrics.clone());
        let described = ds.describe_task().await.map_err(CallError::from);
        let facts: Result<TaskFacts, CallError> =
            described.as_ref().map(task_facts).map_err(Clone::clone);
        let arn_region = parse_task_arn(arn)
            .map(|a| a.region.to_string())
            .unwrap_or_default();
        let mut out = vec![eval::task(
            arn,
            &arn_region,
            &c.control_account().region,
            &facts,
        )];
        let (facts, described) = match (&facts, &described) {
            (Ok(f), Ok(d)) => (f, d),
            (Err(e), _) | (_, Err(e)) => {
                for check in [
                    CheckId::DatasyncLocations,
                    CheckId::DatasyncSchedule,
                    CheckId::DatasyncFilters,
                    CheckId::DatasyncOptions,
                ] {
                    out.push(Check::fail(
                        check,
                        arn,
                        format!("the task could not be described: {}", e.line),
                        "fix datasync.task first",
                    ));
                }
                return out;
            }
        };
        let location = |loc: Option<&str>| {
            let ds = &ds;
            let loc = loc.map(str::to_string);
            async move {
                let loc = loc.ok_or_else(|| CallError {
                    kind: crate::labels::ErrorKind::Other,
                    code: None,
                    line: "the task names no location".into(),
                    bucket_region: None,
                })?;
                ds.location_uri(&loc).await.map_err(CallError::from)
            }
        };
        let (src, dst) = tokio::join!(
            location(described.source_location_arn()),
            location(described.destination_location_arn()),
        );
        out.push(eval::locations(
            arn,
            src,
            dst,
            &c.source.bucket,
            &c.target.bucket,
            &c.sync.location_subdirectory,
        ));
        out.push(eval::schedule(arn, facts, c.sync.filter_mode));
        out.push(eval::filters(arn, facts, c.sync.filter_mode));
        out.push(eval::options(arn, facts));
        out
    }

    /// `mirror-versions`: replication covers the purge's scope; the target's lifecycle does
    /// not write markers there.
    async fn mirror_checks(&self) -> Vec<Check> {
        let c = &self.config;
        let source = self.bucket(&self.clients.source, &c.source.bucket);
        let target = self.bucket(&self.clients.target, &c.target.bucket);
        let (replication, lifecycle) = tokio::join!(source.replication(), target.lifecycle());
        vec![
            eval::replication(
                &c.source.bucket,
                &c.target.bucket,
                replication.map_err(CallError::from),
                &c.purge.prefixes,
            ),
            eval::lifecycle(
                &c.target.bucket,
                lifecycle.map_err(CallError::from),
                &c.purge.prefixes,
            ),
        ]
    }

    /// Writes, conditionally re-writes and reads a probe document, and reads a missing one.
    async fn state_check(&self) -> Check {
        let c = &self.config;
        let b = self.bucket(&self.clients.source, &c.state.bucket);
        let probe_key = format!("{}doctor/probe-{}.json", c.state.prefix, self.holder);
        let body =
            serde_json::json!({"probe": "s3-reconciler doctor", "holder": self.holder}).to_string();
        let write = b
            .put(&probe_key, body.clone().into_bytes(), Condition::Overwrite)
            .await
            .map(|_| ())
            .map_err(CallError::from);
        let conditional_refused = b
            .put(&probe_key, body.clone().into_bytes(), Condition::Create)
            .await
            .map(|p| p == Put::Conflict)
            .map_err(CallError::from);
        let read_back = b
            .get(&probe_key)
            .await
            .map(|f| f.is_some_and(|f| f.body == body.as_bytes()))
            .map_err(CallError::from);
        let missing_key = format!(
            "{}doctor/missing-{}.json",
            c.state.prefix,
            uuid::Uuid::new_v4().simple()
        );
        let missing = b
            .get(&missing_key)
            .await
            .map(|_| ())
            .map_err(CallError::from);
        eval::state(
            &c.state.bucket,
            &c.state.prefix,
            &StateProbe {
                write,
                conditional_refused,
                read_back,
                missing,
            },
        )
    }
}

fn notifications(
    out: &aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
) -> (Vec<Notification>, bool) {
    // S3 answers `Prefix`, the SDK's enum and the emulator say `prefix`.
    let filter = |f: Option<&aws_sdk_s3::types::NotificationConfigurationFilter>,
                  name: FilterRuleName| {
        f.and_then(|f| f.key())
            .map(|k| k.filter_rules())
            .unwrap_or_default()
            .iter()
            .find(|r| {
                r.name()
                    .is_some_and(|n| n.as_str().eq_ignore_ascii_case(name.as_str()))
            })
            .and_then(|r| r.value().map(str::to_string))
    };
    let events = |e: &[Event]| e.iter().map(|e| e.as_str().to_string()).collect::<Vec<_>>();
    let mut v = Vec::new();
    for q in out.queue_configurations() {
        v.push(Notification {
            destination: Destination::Queue,
            arn: q.queue_arn().to_string(),
            id: q.id().map(str::to_string),
            events: events(q.events()),
            prefix: filter(q.filter(), FilterRuleName::Prefix),
            suffix: filter(q.filter(), FilterRuleName::Suffix),
        });
    }
    for t in out.topic_configurations() {
        v.push(Notification {
            destination: Destination::Topic,
            arn: t.topic_arn().to_string(),
            id: t.id().map(str::to_string),
            events: events(t.events()),
            prefix: filter(t.filter(), FilterRuleName::Prefix),
            suffix: filter(t.filter(), FilterRuleName::Suffix),
        });
    }
    for l in out.lambda_function_configurations() {
        v.push(Notification {
            destination: Destination::Lambda,
            arn: l.lambda_function_arn().to_string(),
            id: l.id().map(str::to_string),
            events: events(l.events()),
            prefix: filter(l.filter(), FilterRuleName::Prefix),
            suffix: filter(l.filter(), FilterRuleName::Suffix),
        });
    }
    (v, out.event_bridge_configuration().is_some())
}

fn task_facts(d: &aws_sdk_datasync::operation::describe_task::DescribeTaskOutput) -> TaskFacts {
    let rules = |r: &[aws_sdk_datasync::types::FilterRule]| {
        r.iter()
            .filter_map(|f| f.value().map(str::to_string))
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
    };
    let o = d.options();
    let mut options = Vec::new();
    if let Some(o) = o {
        let mut add = |name: &str, v: Option<&str>| {
            if let Some(v) = v {
                options.push(format!("{name}={v}"));
            }
        };
        add("VerifyMode", o.verify_mode().map(|v| v.as_str()));
        add("OverwriteMode", o.overwrite_mode().map(|v| v.as_str()));
        add(
            "PreserveDeletedFiles",
            o.preserve_deleted_files().map(|v| v.as_str()),
        );
        add("ObjectTags", o.object_tags().map(|v| v.as_str()));
        add("LogLevel", o.log_level().map(|v| v.as_str()));
    }
    TaskFacts {
        status: d.status().map(|s| s.as_str().to_string()),
        source_location: d.source_location_arn().map(str::to_string),
        destination_location: d.destination_location_arn().map(str::to_string),
        schedule: d
            .schedule()
            .map(|s| s.schedule_expression().to_string())
            .filter(|s| !s.is_empty()),
        schedule_enabled: d
            .schedule()
            .and_then(|s| s.status())
            .map(|s| *s == ScheduleStatus::Enabled),
        includes: rules(d.includes()),
        excludes: rules(d.excludes()),
        transfer_mode: o
            .and_then(|o| o.transfer_mode())
            .map(|m| m.as_str().to_string()),
        options,
    }
}

/// The checks as text: one line each, then the fix, then a count.
pub(crate) fn render_text(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<5} {:<20} {}: {}\n",
            c.status.label().to_uppercase(),
            c.check.label(),
            c.resource,
            c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("{:<26} fix: {fix}\n", ""));
        }
    }
    let n = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} check(s): {} pass, {} warn, {} fail\n",
        checks.len(),
        n(CheckStatus::Pass),
        n(CheckStatus::Warn),
        n(CheckStatus::Fail)
    ));
    out
}

/// No check failed (warnings allowed).
pub fn healthy(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != CheckStatus::Fail)
}
