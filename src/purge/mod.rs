//! Permanent-delete propagation: when a key is permanently gone from the versioned source,
//! purge the target's versions and delete markers of exactly that key.
//!
//! `event` parses message bodies, `decide` makes the (pure) decision, this module does the S3
//! I/O around it, and `consumer` drives it from SQS. Every target entry deleted is logged as one
//! audit line (target `s3_reconciler::audit`).

pub mod consumer;
pub mod decide;
pub mod event;

use std::time::Duration;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::config::{Config, PurgeMode};
use crate::metrics::Metrics;
use decide::{Decision, Entry};

/// S3's DeleteObjects limit.
const DELETE_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("listing versions of s3://{bucket}/{key}: {reason}")]
    List {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error(
        "s3://{bucket}/{key} has more than {limit} entries; refusing (purge.max_versions_per_key)"
    )]
    TooManyVersions {
        bucket: String,
        key: String,
        limit: usize,
    },
    #[error("deleting from s3://{bucket}/{key}: {reason}")]
    Delete {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("deleting s3://{bucket}/{key} version {version_id}: {code}: {message}")]
    DeleteEntry {
        bucket: String,
        key: String,
        version_id: String,
        code: String,
        message: String,
    },
}

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Target entries deleted (or, in dry-run, that would have been).
    Purged {
        deleted: Vec<Entry>,
        dry_run: bool,
    },
    NothingToPurge,
    SourcePresent,
    /// Protected by the race guard; look again later.
    Deferred {
        protected: usize,
    },
    /// Refused by the `max_versions_per_key` guardrail.
    Refused {
        reason: String,
    },
}

impl KeyOutcome {
    /// The metric label for this outcome.
    pub fn label(&self) -> &'static str {
        match self {
            KeyOutcome::Purged { deleted, .. } if deleted.is_empty() => "nothing_to_purge",
            KeyOutcome::Purged { .. } => "purged",
            KeyOutcome::NothingToPurge => "nothing_to_purge",
            KeyOutcome::SourcePresent => "source_present",
            KeyOutcome::Deferred { .. } => "deferred",
            KeyOutcome::Refused { .. } => "refused",
        }
    }

    /// Whether the event that led here is fully handled (its message may be deleted).
    pub fn is_settled(&self) -> bool {
        !matches!(
            self,
            KeyOutcome::Deferred { .. } | KeyOutcome::Refused { .. }
        )
    }
}

/// Applies the purge decision to one key with real S3 state.
#[derive(Clone)]
pub struct Purger {
    pub source: aws_sdk_s3::Client,
    pub target: aws_sdk_s3::Client,
    pub source_bucket: String,
    pub target_bucket: String,
    pub mode: PurgeMode,
    pub dry_run: bool,
    pub max_versions_per_key: usize,
    pub race_guard_margin: Duration,
    pub metrics: Metrics,
}

impl Purger {
    pub fn new(
        config: &Config,
        source: aws_sdk_s3::Client,
        target: aws_sdk_s3::Client,
        metrics: Metrics,
    ) -> Self {
        Purger {
            source,
            target,
            source_bucket: config.source.bucket.clone(),
            target_bucket: config.target.bucket.clone(),
            mode: config.purge.mode,
            dry_run: config.purge.dry_run,
            max_versions_per_key: config.purge.max_versions_per_key,
            race_guard_margin: config.purge.race_guard_margin,
            metrics,
        }
    }

    /// Decides and applies the purge of `key`. `reason` and `origin` (a message id) go into
    /// the audit lines.
    pub async fn purge_key(
        &self,
        key: &str,
        reason: &str,
        origin: &str,
    ) -> Result<KeyOutcome, PurgeError> {
        let listed_at = Utc::now();
        let source = match self
            .list_exact(&self.source, &self.source_bucket, key)
            .await
        {
            Ok(s) => s,
            Err(PurgeError::TooManyVersions { .. }) if self.mode == PurgeMode::WhenSourceEmpty => {
                // More than the limit in the source means it certainly still holds the key.
                return Ok(KeyOutcome::SourcePresent);
            }
            Err(e) => return Err(e),
        };
        if self.mode == PurgeMode::WhenSourceEmpty && !source.is_empty() {
            return Ok(KeyOutcome::SourcePresent);
        }
        let target = match self
            .list_exact(&self.target, &self.target_bucket, key)
            .await
        {
            Ok(t) => t,
            Err(e @ PurgeError::TooManyVersions { .. }) => {
                warn!(error = %e, "purge refused");
                return Ok(KeyOutcome::Refused {
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        };
        let cutoff =
            listed_at - chrono::Duration::from_std(self.race_guard_margin).unwrap_or_default();
        match decide::decide(self.mode, key, &source, &target, cutoff) {
            Decision::SourcePresent { .. } => Ok(KeyOutcome::SourcePresent),
            Decision::NothingToDelete => Ok(KeyOutcome::NothingToPurge),
            Decision::Deferred { protected } => {
                info!(bucket = %self.target_bucket, key, protected, "race guard: target entries newer than the source listing; will look again");
                Ok(KeyOutcome::Deferred { protected })
            }
            Decision::Delete { entries, deferred } => {
                self.delete(key, &entries, reason, origin).await?;
                if deferred > 0 {
                    info!(bucket = %self.target_bucket, key, protected = deferred, "race guard kept recent target entries; will look again");
                    return Ok(KeyOutcome::Deferred {
                        protected: deferred,
                    });
                }
                Ok(KeyOutcome::Purged {
                    deleted: entries,
                    dry_run: self.dry_run,
                })
            }
        }
    }

    /// Every version and delete marker of exactly `key`, across all pages.
    ///
    /// The listing uses `Prefix=key`, which also returns longer keys (`a.txt.bak`); those are
    /// dropped. Keys come back in byte order and `key` sorts before every longer key sharing
    /// its prefix, so the first foreign key means all of ours have been seen.
    pub async fn list_exact(
        &self,
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<Entry>, PurgeError> {
        let mut out = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            self.metrics.s3_request("ListObjectVersions");
            let page = client
                .list_object_versions()
                .bucket(bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| PurgeError::List {
                    bucket: bucket.into(),
                    key: key.into(),
                    reason: DisplayErrorContext(&e).to_string(),
                })?;
            let mut past_key = false;
            for v in page.versions() {
                match v.key() {
                    Some(k) if k == key => out.push(Entry {
                        key: k.to_string(),
                        version_id: v.version_id().unwrap_or("null").to_string(),
                        delete_marker: false,
                        last_modified: v.last_modified().and_then(to_chrono),
                    }),
                    _ => past_key = true,
                }
            }
            for m in page.delete_markers() {
                match m.key() {
                    Some(k) if k == key => out.push(Entry {
                        key: k.to_string(),
                        version_id: m.version_id().unwrap_or("null").to_string(),
                        delete_marker: true,
                        last_modified: m.last_modified().and_then(to_chrono),
                    }),
                    _ => past_key = true,
                }
            }
            if out.len() > self.max_versions_per_key {
                return Err(PurgeError::TooManyVersions {
                    bucket: bucket.into(),
                    key: key.into(),
                    limit: self.max_versions_per_key,
                });
            }
            if past_key || !page.is_truncated().unwrap_or(false) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                return Ok(out);
            }
        }
    }

    async fn delete(
        &self,
        key: &str,
        entries: &[Entry],
        reason: &str,
        origin: &str,
    ) -> Result<(), PurgeError> {
        let bucket = &self.target_bucket;
        if self.dry_run {
            for e in entries {
                info!(target: "s3_reconciler::audit", action = "would_delete", bucket = %bucket, key = %e.key,
                      version_id = %e.version_id, delete_marker = e.delete_marker, reason, message_id = origin,
                      dry_run = true, "dry run: target entry would be deleted");
            }
            return Ok(());
        }
        let mut first_error: Option<PurgeError> = None;
        for batch in entries.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|e| {
                    ObjectIdentifier::builder()
                        .key(&e.key)
                        .version_id(&e.version_id)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PurgeError::Delete {
                    bucket: bucket.clone(),
                    key: key.into(),
                    reason: e.to_string(),
                })?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(false)
                .build()
                .map_err(|e| PurgeError::Delete {
                    bucket: bucket.clone(),
                    key: key.into(),
                    reason: e.to_string(),
                })?;
            self.metrics.s3_request("DeleteObjects");
            let out = self
                .target
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| PurgeError::Delete {
                    bucket: bucket.clone(),
                    key: key.into(),
                    reason: DisplayErrorContext(&e).to_string(),
                })?;
            for d in out.deleted() {
                let version_id = d.version_id().unwrap_or("null");
                let delete_marker = batch
                    .iter()
                    .find(|e| e.version_id == version_id)
                    .is_some_and(|e| e.delete_marker);
                let kind = if delete_marker {
                    "delete_marker"
                } else {
                    "version"
                };
                self.metrics.purge_deleted.with_label_values(&[kind]).inc();
                info!(target: "s3_reconciler::audit", action = "delete", bucket = %bucket, key = d.key().unwrap_or(key),
                      version_id, delete_marker, reason, message_id = origin, "deleted target entry");
            }
            for err in out.errors() {
                let e = PurgeError::DeleteEntry {
                    bucket: bucket.clone(),
                    key: err.key().unwrap_or(key).to_string(),
                    version_id: err.version_id().unwrap_or("null").to_string(),
                    code: err.code().unwrap_or("Unknown").to_string(),
                    message: err.message().unwrap_or("").to_string(),
                };
                warn!(error = %e, "target entry not deleted");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// One line of `s3-reconciler purge` output.
#[derive(Debug, Serialize)]
pub struct ManualResult {
    pub key: String,
    pub outcome: &'static str,
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

impl ManualResult {
    pub fn from_result(key: &str, res: Result<KeyOutcome, PurgeError>, dry_run: bool) -> Self {
        match res {
            Ok(outcome) => {
                let deleted = match &outcome {
                    KeyOutcome::Purged { deleted, .. } => deleted
                        .iter()
                        .map(|e| DeletedEntry {
                            version_id: e.version_id.clone(),
                            delete_marker: e.delete_marker,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let error = match &outcome {
                    KeyOutcome::Refused { reason } => Some(reason.clone()),
                    _ => None,
                };
                ManualResult {
                    key: key.into(),
                    outcome: outcome.label(),
                    dry_run,
                    deleted,
                    error,
                }
            }
            Err(e) => ManualResult {
                key: key.into(),
                outcome: "failed",
                dry_run,
                deleted: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    }
}
