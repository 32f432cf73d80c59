//! Purging one key with real S3 state: list both sides (at the same time), let
//! [`decide`](super::decide::decide) decide, and hand what it chose to the [`Deleter`].

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::{info, instrument, warn};

use super::decide::{self, Decision, Entry, Policy};
use super::delete::{self, Deciding, DeleteError, Deleter, Hold, Origin};
use super::lister::Lister;
use crate::aws::AwsError;
use crate::aws::s3::Bucket;
use crate::config::{Config, MarkerOnlySource, PurgeMode};
use crate::labels::{ErrorKind, PurgeOutcome};
use crate::metrics::Metrics;

/// Why a key could not be purged; the message is kept for redelivery.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PurgeError {
    #[error("{0}")]
    List(Arc<AwsError>),
    #[error(transparent)]
    Delete(#[from] DeleteError),
}

impl PurgeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PurgeError::List(e) => e.kind,
            PurgeError::Delete(e) => e.kind(),
        }
    }
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
    pub fn label(&self) -> PurgeOutcome {
        match self {
            KeyOutcome::Purged { .. } => PurgeOutcome::Purged,
            KeyOutcome::NothingToPurge => PurgeOutcome::NothingToPurge,
            KeyOutcome::SourcePresent => PurgeOutcome::SourcePresent,
            KeyOutcome::Deferred { .. } => PurgeOutcome::Deferred,
            KeyOutcome::Refused { .. } => PurgeOutcome::Refused,
        }
    }

    /// Whether the event that led here is fully handled (its message may be deleted).
    pub(crate) fn is_settled(&self) -> bool {
        !matches!(
            self,
            KeyOutcome::Deferred { .. } | KeyOutcome::Refused { .. }
        )
    }
}

/// Applies the purge decision to keys with real S3 state.
#[derive(Clone)]
pub struct Purger {
    pub source: Bucket,
    pub target: Bucket,
    pub mode: PurgeMode,
    pub marker_only_source: MarkerOnlySource,
    pub dry_run: bool,
    /// `max_versions_per_key`; the lister collects up to the same limit.
    max_versions_per_key: usize,
    pub race_guard_margin: Duration,
    lister: Lister,
    deleter: Deleter,
    deciding: Deciding,
}

impl Purger {
    /// Must be called within a Tokio runtime (it starts the listing and deleting tasks).
    pub fn new(
        config: &Config,
        source: aws_sdk_s3::Client,
        target: aws_sdk_s3::Client,
        metrics: Metrics,
    ) -> Self {
        let source = Bucket::new(source, &config.source.bucket, metrics.clone());
        let target = Bucket::new(target, &config.target.bucket, metrics.clone());
        let limit = config.purge.max_versions_per_key.get();
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
                limit,
                units,
                metrics.clone(),
            ),
            deleter: Deleter::spawn(target.clone(), metrics, deciding.clone()),
            deciding,
            source,
            target,
            mode: config.purge.mode,
            marker_only_source: config.purge.marker_only_source,
            dry_run: config.purge.dry_run,
            max_versions_per_key: config.purge.max_versions_per_key.get(),
            race_guard_margin: config.purge.race_guard_margin,
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
        self.purge_key_holding(key, reason, origin, None).await
    }

    /// [`purge_key`](Self::purge_key), releasing `hold` as soon as the key is decided and its
    /// deletion handed over, before the DeleteObjects answers.
    #[instrument(name = "purge_key", skip(self, reason, origin, hold), fields(key = %key))]
    pub(crate) async fn purge_key_holding(
        &self,
        key: &str,
        reason: &str,
        origin: &str,
        hold: Option<Hold>,
    ) -> Result<KeyOutcome, PurgeError> {
        let deciding = self.deciding.enter(hold);
        let limit = self.max_versions_per_key;
        let listed = self.lister.list(key).await.map_err(PurgeError::List)?;
        let (source, target) = (listed.source, listed.target);
        let cutoff =
            listed.started - chrono::Duration::from_std(self.race_guard_margin).unwrap_or_default();
        let origin = Origin {
            reason: reason.to_string(),
            message_id: origin.to_string(),
        };
        let policy = Policy {
            mode: self.mode,
            marker_only_source: self.marker_only_source,
            limit,
        };
        match decide::decide(&policy, key, &source, &target, cutoff) {
            Decision::SourcePresent { .. } => Ok(KeyOutcome::SourcePresent),
            Decision::NothingToDelete => Ok(KeyOutcome::NothingToPurge),
            Decision::Deferred { protected } => {
                info!(bucket = %self.target.name, protected,
                      "race guard: target entries newer than the source listing; will look again");
                Ok(KeyOutcome::Deferred { protected })
            }
            Decision::Refused { side, limit } => {
                let reason = format!(
                    "s3://{}/{key} has more than {limit} entries in the {side}; refusing (purge.max_versions_per_key)",
                    if side == decide::Side::Source {
                        &self.source.name
                    } else {
                        &self.target.name
                    }
                );
                warn!(%reason, "purge refused");
                Ok(KeyOutcome::Refused { reason })
            }
            Decision::Delete { entries, deferred } => {
                if self.dry_run {
                    delete::audit_dry_run(&self.target.name, &entries, &origin);
                } else {
                    self.deleter
                        .delete(entries.clone(), origin, deciding)
                        .await?;
                }
                if deferred > 0 {
                    info!(bucket = %self.target.name, protected = deferred,
                          "race guard kept recent target entries; will look again");
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

impl ManualResult {
    pub(crate) fn from_result(
        key: &str,
        res: Result<KeyOutcome, PurgeError>,
        dry_run: bool,
    ) -> Self {
        let (outcome, deleted, error) = match res {
            Ok(KeyOutcome::Purged { deleted, .. }) => (
                PurgeOutcome::Purged,
                deleted
                    .into_iter()
                    .map(|e| DeletedEntry {
                        version_id: e.version_id,
                        delete_marker: e.delete_marker,
                    })
                    .collect(),
                None,
            ),
            Ok(KeyOutcome::Refused { reason }) => (PurgeOutcome::Refused, Vec::new(), Some(reason)),
            Ok(other) => (other.label(), Vec::new(), None),
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
