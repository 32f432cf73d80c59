//! `doctor`: checks that AWS is wired the way the configuration assumes, with read-only calls
//! on the customer's resources, one probe document under the state prefix, and one delete
//! request that deletes nothing (`target.delete`). The same
//! checks run inside the daemon at start-up and periodically ([`preflight`]).
//!
//! Only the checks the enabled tasks depend on run ([`checks`]); each has an id ([`CheckId`])
//! that is also its metric label. Verdicts are pure ([`eval`]), from facts translated out of
//! AWS's answers ([`facts`]); this module gathers them, through the `aws` wrappers.

pub mod checks;
pub mod eval;
pub mod facts;
pub mod preflight;
pub mod render;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use checks::{Facts, needs, relevant};
pub use eval::Check;
use eval::{CallError, DeleteProbe, StateProbe, TaskFacts};
use facts::{notifications, task_facts};
pub use render::healthy;
pub(crate) use render::render_text;

use crate::aws::Clients;
use crate::aws::datasync::DataSync;
use crate::aws::s3::{Bucket, Condition, Entry, Put};
use crate::aws::sqs::Queue;
use crate::config::{Config, parse_task_arn};
use crate::labels::CheckId;
use crate::metrics::Metrics;
use crate::purge::audit::{AuditAction, AuditLine, Origin};

/// `checks` when `wanted`, else none (and nothing asked of AWS).
async fn when(wanted: bool, checks: impl Future<Output = Vec<Check>>) -> Vec<Check> {
    match wanted {
        true => checks.await,
        false => Vec::new(),
    }
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

    /// Runs every relevant check; the order is [`CheckId`]'s. The facts a check needs are
    /// gathered whenever that check is wanted.
    pub async fn run(&self) -> Vec<Check> {
        let wanted = relevant(&self.config);
        let has = |c: CheckId| wanted.contains(&c);
        let needed: BTreeSet<Facts> = wanted.iter().map(|c| needs(*c)).collect();
        let gather = |f: Facts| needed.contains(&f);
        let versioning = has(CheckId::SourceVersioning) || has(CheckId::TargetVersioning);
        let (buckets, delete, purge, sync, state, mirror) = tokio::join!(
            when(gather(Facts::Buckets), self.buckets(versioning)),
            when(gather(Facts::Delete), async {
                vec![self.delete_check().await]
            }),
            when(gather(Facts::Purge), self.purge_checks()),
            when(gather(Facts::DataSync), self.datasync_checks()),
            when(gather(Facts::State), async {
                vec![self.state_check().await]
            }),
            when(gather(Facts::Mirror), self.mirror_checks()),
        );
        let mut all: Vec<Check> = buckets
            .into_iter()
            .chain(delete)
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
        out.push(self.locations(&ds, described).await);
        out.push(eval::schedule(arn, facts, c.sync.filter_mode));
        out.push(eval::filters(arn, facts, c.sync.filter_mode));
        out.push(eval::options(arn, facts));
        out
    }

    /// `datasync.locations`: the task's locations are the configured buckets.
    async fn locations(
        &self,
        ds: &DataSync,
        described: &aws_sdk_datasync::operation::describe_task::DescribeTaskOutput,
    ) -> Check {
        let c = &self.config;
        let location = |loc: Option<&str>| {
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
        eval::locations(
            &c.sync.task_arn,
            src,
            dst,
            &c.source.bucket,
            &c.target.bucket,
            &c.sync.location_subdirectory,
        )
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

    /// `target.delete`: a DeleteObjects of the `null` version of a key that does not exist
    /// (unique, in the purge's scope): nothing is deleted, and S3 answers as it would a
    /// purge's request. Audited, like every delete request.
    async fn delete_check(&self) -> Check {
        let c = &self.config;
        let target = self.bucket(&self.clients.target, &c.target.bucket);
        let entry = Entry {
            key: probe_key(c),
            version_id: "null".into(),
            delete_marker: false,
            last_modified: None,
        };
        let origin = Origin {
            reason: "doctor".into(),
            message_id: CheckId::TargetDelete.label().into(),
        };
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let audit = |action| {
            AuditLine {
                bucket: &target.name,
                entry: &entry,
                origin: &origin,
                action,
            }
            .record()
        };
        audit(AuditAction::Deleting {
            batch_id: &batch_id,
        });
        let answer = match target.delete_versions(&[&entry]).await {
            Ok(report) => Ok(facts::delete_answer(&report, &entry)),
            Err(e) => Err(CallError::from(e)),
        };
        match &answer {
            Ok(None) => audit(AuditAction::Deleted {
                batch_id: &batch_id,
            }),
            Ok(Some((code, _))) => audit(AuditAction::Failed {
                batch_id: &batch_id,
                error: code,
            }),
            Err(e) => audit(AuditAction::Failed {
                batch_id: &batch_id,
                error: &e.line,
            }),
        }
        eval::target_delete(
            &c.target.bucket,
            &DeleteProbe {
                key: entry.key.clone(),
                answer,
            },
        )
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

/// The delete probe's key: unique, never written, under the first prefix in scope (a policy
/// that grants deletes only there must still pass).
fn probe_key(c: &Config) -> String {
    let scope = c
        .purge
        .prefixes
        .first()
        .or(c.sweep.prefixes.first())
        .map_or("", String::as_str);
    format!(
        "{scope}.s3-reconciler-probe/{}",
        uuid::Uuid::new_v4().simple()
    )
}
