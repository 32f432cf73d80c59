//! Purging one key with real S3 state: list both sides (at the same time), prove which
//! target versions are replicas (`mirror-versions`), let [`decide`](super::decide::decide)
//! decide, and hand what it chose to the [`Deleter`]: versions first, delete markers only once
//! every version is confirmed gone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tracing::{info, instrument, warn};

use super::audit::{AuditAction, AuditLine, Origin};
use super::decide::{self, Decision, Entry, Guards, Policy, Side};
use super::delete::{self, Deciding, DeleteError, Deleter, Hold, Partial, StopFlag};
use super::lister::{Lister, Listings};
use super::outcome::{KeyOutcome, PurgeError};
use crate::aws::s3::Bucket;
use crate::config::{Config, PurgeMode};
use crate::labels::PurgeOutcome;
use crate::metrics::Metrics;

/// HeadObject requests in flight per key while proving replicas.
const PROOFS_IN_FLIGHT: usize = 8;

/// One key to decide, and what its decision may rely on.
pub(crate) struct KeyRequest<'a> {
    pub key: &'a str,
    /// Why and for whom: the audit lines carry it.
    pub origin: Origin,
    /// `mirror-versions`: the version id the event says the source lost; its replica in the
    /// target (same id) may go. Without it, replicas are proven with HeadObject.
    pub lost_version: Option<&'a str>,
    /// The sweep's `min_age`, applied to the deciding listing.
    pub young_after: Option<DateTime<Utc>>,
    pub stop: Option<StopFlag>,
    /// Released once the key is decided and its deletion handed over.
    pub hold: Option<Hold>,
    /// Set when this key's listings start (a message may share a decision only before).
    pub listing_started: Option<Arc<AtomicBool>>,
}

impl<'a> KeyRequest<'a> {
    pub(crate) fn new(key: &'a str, reason: &str, message_id: &str) -> Self {
        KeyRequest {
            key,
            origin: Origin {
                reason: reason.to_string(),
                message_id: message_id.to_string(),
            },
            lost_version: None,
            young_after: None,
            stop: None,
            hold: None,
            listing_started: None,
        }
    }
}

/// Applies the purge decision to keys with real S3 state.
#[derive(Clone)]
pub struct Purger {
    pub source: Bucket,
    pub target: Bucket,
    policy: Policy,
    dry_run: bool,
    pub race_guard_margin: Duration,
    lister: Lister,
    deleter: Deleter,
    deciding: Deciding,
}

impl Purger {
    /// Must be called within a Tokio runtime (it starts the listing and deleting tasks).
    /// `dry_run`: decide and audit, delete nothing (`purge.dry_run`, or a command's own flag).
    pub fn new(
        config: &Config,
        source: aws_sdk_s3::Client,
        target: aws_sdk_s3::Client,
        metrics: Metrics,
        dry_run: bool,
    ) -> Self {
        let source = Bucket::new(source, &config.source.bucket, metrics.clone());
        let target = Bucket::new(target, &config.target.bucket, metrics.clone());
        let policy = Policy::from_config(&config.purge);
        // As many listings in flight as keys the purge or the sweep decides at once.
        let units = config
            .purge
            .concurrency
            .get()
            .max(config.sweep.concurrency.get());
        let deciding = Deciding::default();
        Purger {
            lister: Lister::spawn(
                source.clone(),
                target.clone(),
                policy.limit,
                units,
                metrics.clone(),
            ),
            deleter: Deleter::spawn(target.clone(), metrics, deciding.clone()),
            deciding,
            source,
            target,
            policy,
            dry_run: dry_run || config.purge.dry_run,
            race_guard_margin: config.purge.race_guard_margin,
        }
    }

    /// Whether this purger only decides and audits.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The same purger (listings and deleter shared) that only decides and audits.
    pub fn as_dry_run(&self) -> Purger {
        Purger {
            dry_run: true,
            ..self.clone()
        }
    }

    /// Decides and applies the purge of `key`. `reason` (the event name, `manual`) and
    /// `origin` (a message id) go into the audit lines.
    pub async fn purge_key(
        &self,
        key: &str,
        reason: &str,
        origin: &str,
    ) -> Result<KeyOutcome, PurgeError> {
        self.decide(KeyRequest::new(key, reason, origin)).await
    }

    /// Lists, proves, decides and deletes one key.
    #[instrument(name = "purge_key", skip_all, fields(key = %req.key))]
    pub(crate) async fn decide(&self, req: KeyRequest<'_>) -> Result<KeyOutcome, PurgeError> {
        let deciding = self.deciding.enter(req.hold);
        let key = req.key;
        let listed = self
            .lister
            .list(key, req.listing_started)
            .await
            .map_err(PurgeError::List)?;
        let replicas = self.replicas(key, &listed, req.lost_version).await?;
        let guards = Guards {
            cutoff: listed.started
                - chrono::Duration::from_std(self.race_guard_margin).unwrap_or_default(),
            young_after: req.young_after,
        };
        let decision = decide::decide(
            &self.policy,
            key,
            &listed.source,
            &listed.target,
            &replicas,
            guards,
        );
        match decision {
            Decision::SourcePresent { .. } => Ok(KeyOutcome::SourcePresent),
            Decision::NothingToDelete => Ok(KeyOutcome::NothingToPurge),
            Decision::NotReplica { entries } => {
                info!(bucket = %self.target.name, entries,
                      "target entries the source does not have, none proven a replica of a lost version; left alone");
                Ok(KeyOutcome::NotReplica { entries })
            }
            Decision::TooYoung => Ok(KeyOutcome::TooYoung),
            Decision::Deferred { protected } => {
                info!(bucket = %self.target.name, protected,
                      "race guard: target entries newer than the source listing; will look again");
                Ok(KeyOutcome::Deferred { protected })
            }
            Decision::Refused { side, limit } => {
                let bucket = match side {
                    Side::Source => &self.source.name,
                    Side::Target => &self.target.name,
                };
                let reason = format!(
                    "s3://{bucket}/{key} has more than {limit} entries in the {side}; refusing (purge.max_versions_per_key)"
                );
                warn!(%reason, "purge refused");
                Ok(KeyOutcome::Refused { reason })
            }
            Decision::Delete {
                versions,
                markers,
                deferred,
            } => {
                self.delete(versions, markers, deferred, req.origin, deciding, req.stop)
                    .await
            }
        }
    }

    /// Target version ids proven to be replicas of a source version, in `mirror-versions`
    /// only: the event's lost version id, else each target version the source does not have
    /// that HeadObject reports as `REPLICA`.
    async fn replicas(
        &self,
        key: &str,
        listed: &Listings,
        lost_version: Option<&str>,
    ) -> Result<BTreeSet<String>, PurgeError> {
        if self.policy.mode != PurgeMode::MirrorVersions {
            return Ok(BTreeSet::new());
        }
        // Version ids are unique, so a target version with the id the source lost is its
        // replica. Except `null`: every bucket's pre-versioning object has that id.
        if let Some(v) = lost_version.filter(|v| *v != "null") {
            return Ok(BTreeSet::from([v.to_string()]));
        }
        let source: BTreeSet<&str> = listed
            .source
            .entries
            .iter()
            .filter(|e| e.key == key)
            .map(|e| e.version_id.as_str())
            .collect();
        let unknown: Vec<String> = listed
            .target
            .entries
            .iter()
            .filter(|e| e.key == key && !e.delete_marker && !source.contains(e.version_id.as_str()))
            .map(|e| e.version_id.clone())
            .collect();
        let heads = unknown.into_iter().map(|id| {
            let (target, key) = (self.target.clone(), key.to_string());
            async move {
                let status = target.replication_status(&key, &id).await;
                (id, status)
            }
        });
        let proofs = futures::stream::iter(heads)
            .buffer_unordered(PROOFS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        let mut proven = BTreeSet::new();
        for (id, status) in proofs {
            match status.map_err(|e| PurgeError::List(Arc::new(e)))? {
                Some(s) if s == "REPLICA" => {
                    proven.insert(id);
                }
                _ => {}
            }
        }
        Ok(proven)
    }

    /// Deletes `versions`, then, once every one is confirmed, `markers`.
    async fn delete(
        &self,
        versions: Vec<Entry>,
        markers: Vec<Entry>,
        deferred: usize,
        origin: Origin,
        deciding: delete::DecidingGuard,
        stop: Option<StopFlag>,
    ) -> Result<KeyOutcome, PurgeError> {
        if self.dry_run {
            return Ok(self.would_delete(versions, markers, deferred, &origin));
        }
        if stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Ok(KeyOutcome::Stopped);
        }
        let mut deleted = Vec::new();
        let mut deciding = Some(deciding);
        for step in [versions, markers] {
            if step.is_empty() {
                continue;
            }
            let guard = deciding.take().unwrap_or_else(|| self.deciding.enter(None));
            match self
                .deleter
                .delete(step.clone(), origin.clone(), guard, stop.clone())
                .await
            {
                Ok(()) => deleted.extend(step),
                Err(Partial {
                    error: DeleteError::Cancelled,
                    confirmed,
                }) if confirmed.is_empty() => {
                    return Ok(stopped(deleted, deferred + step.len()));
                }
                Err(mut p) => {
                    deleted.append(&mut p.confirmed);
                    return Err(PurgeError::Delete {
                        error: p.error,
                        deleted,
                    });
                }
            }
        }
        if deferred > 0 {
            info!(bucket = %self.target.name, protected = deferred,
                  "race guard kept recent target entries; will look again");
        }
        Ok(KeyOutcome::Purged {
            deleted,
            dry_run: false,
            deferred,
        })
    }

    /// A dry run: what would be deleted, audited as such.
    fn would_delete(
        &self,
        versions: Vec<Entry>,
        markers: Vec<Entry>,
        deferred: usize,
        origin: &Origin,
    ) -> KeyOutcome {
        let all: Vec<Entry> = versions.into_iter().chain(markers).collect();
        for entry in &all {
            let action = AuditAction::WouldDelete;
            let bucket = &self.target.name;
            AuditLine {
                bucket,
                entry,
                origin,
                action,
            }
            .record();
        }
        KeyOutcome::Purged {
            deleted: all,
            dry_run: true,
            deferred,
        }
    }
}

/// Deleting stopped (the run's first delete error, elsewhere) before a step: the key is
/// partly purged if an earlier step deleted something, else not touched.
fn stopped(deleted: Vec<Entry>, deferred: usize) -> KeyOutcome {
    if deleted.is_empty() {
        return KeyOutcome::Stopped;
    }
    KeyOutcome::Purged {
        deleted,
        dry_run: false,
        deferred,
    }
}

/// One line of `s3-reconciler purge` output.
#[derive(Debug, Serialize)]
pub struct ManualResult {
    pub key: String,
    pub outcome: PurgeOutcome,
    pub dry_run: bool,
    pub deleted: Vec<DeletedEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeletedEntry {
    pub version_id: String,
    pub delete_marker: bool,
}

impl From<Entry> for DeletedEntry {
    fn from(e: Entry) -> Self {
        DeletedEntry {
            version_id: e.version_id,
            delete_marker: e.delete_marker,
        }
    }
}

impl ManualResult {
    pub(crate) fn from_result(
        key: &str,
        res: Result<KeyOutcome, PurgeError>,
        dry_run: bool,
    ) -> Self {
        let (outcome, deleted, error) = match res {
            Ok(KeyOutcome::Purged {
                deleted, deferred, ..
            }) => (
                if deferred == 0 {
                    PurgeOutcome::Purged
                } else {
                    PurgeOutcome::Deferred
                },
                deleted.into_iter().map(DeletedEntry::from).collect(),
                None,
            ),
            Ok(KeyOutcome::Refused { reason }) => (PurgeOutcome::Refused, Vec::new(), Some(reason)),
            Ok(other) => (other.label(), Vec::new(), None),
            Err(PurgeError::Delete { error, deleted }) => (
                PurgeOutcome::Failed,
                deleted.into_iter().map(DeletedEntry::from).collect(),
                Some(error.to_string()),
            ),
            Err(e) => (PurgeOutcome::Failed, Vec::new(), Some(e.to_string())),
        };
        ManualResult {
            key: key.into(),
            outcome,
            dry_run,
            deleted,
            error,
        }
    }

    /// Whether the key ended where it should: purged, or rightly left alone.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.outcome != PurgeOutcome::Deferred
    }
}
