//! What became of one key: its outcome, or the error that stopped it (with what was deleted
//! before).

use std::sync::Arc;

use super::decide::Entry;
use super::delete::{DeleteError, Partial};
use crate::aws::AwsError;
use crate::labels::{ErrorKind, PurgeOutcome};

/// Why a key could not be purged; the message is kept for redelivery.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PurgeError {
    #[error("{0}")]
    List(Arc<AwsError>),
    /// A deletion failed; `deleted` were confirmed deleted before or beside it.
    #[error("{error}")]
    Delete {
        error: DeleteError,
        deleted: Vec<Entry>,
    },
}

impl PurgeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PurgeError::List(e) => e.kind,
            PurgeError::Delete { error, .. } => error.kind(),
        }
    }
}

impl From<Partial> for PurgeError {
    fn from(p: Partial) -> Self {
        PurgeError::Delete {
            error: p.error,
            deleted: p.confirmed,
        }
    }
}

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Target entries deleted (or, in dry-run, that would have been). `deferred` entries were
    /// left for later by the guards: the key is only partly purged until they go too.
    Purged {
        deleted: Vec<Entry>,
        dry_run: bool,
        deferred: usize,
    },
    NothingToPurge,
    SourcePresent,
    /// `mirror-versions`: entries the source does not have, none proven a replica; left.
    NotReplica {
        entries: usize,
    },
    /// Protected by the race guard; look again later.
    Deferred {
        protected: usize,
    },
    /// Refused by the `max_versions_per_key` guardrail.
    Refused {
        reason: String,
    },
    /// The sweep: an entry younger than `min_age` on the deciding listing.
    TooYoung,
    /// The sweep: deleting had stopped (an earlier delete failed) before this key's turn.
    Stopped,
}

impl KeyOutcome {
    pub fn label(&self) -> PurgeOutcome {
        match self {
            KeyOutcome::Purged { deferred: 0, .. } => PurgeOutcome::Purged,
            KeyOutcome::Purged { .. } => PurgeOutcome::Deferred,
            KeyOutcome::NothingToPurge => PurgeOutcome::NothingToPurge,
            KeyOutcome::SourcePresent => PurgeOutcome::SourcePresent,
            KeyOutcome::NotReplica { .. } => PurgeOutcome::NotReplica,
            KeyOutcome::Deferred { .. } | KeyOutcome::TooYoung | KeyOutcome::Stopped => {
                PurgeOutcome::Deferred
            }
            KeyOutcome::Refused { .. } => PurgeOutcome::Refused,
        }
    }

    /// Whether the event that led here is fully handled (its message may be deleted).
    pub(crate) fn completes_event(&self) -> bool {
        match self {
            KeyOutcome::Purged { deferred, .. } => *deferred == 0,
            KeyOutcome::NothingToPurge
            | KeyOutcome::SourcePresent
            | KeyOutcome::NotReplica { .. } => true,
            KeyOutcome::Deferred { .. }
            | KeyOutcome::Refused { .. }
            | KeyOutcome::TooYoung
            | KeyOutcome::Stopped => false,
        }
    }
}
