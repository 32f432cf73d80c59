//! One lease per shard of a swept prefix ([`super::shard`]), in the state bucket: who sweeps
//! it, since when, and the checkpoint a restarted or heir sweep resumes from. Written with
//! conditional requests like the sync claims, so two replicas never sweep a shard at once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::labels::{KeptReason, SweepResult};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LeaseStatus {
    Running,
    Completed,
}

/// Whether a run deletes: a checkpoint is only resumed by a run of the same kind.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    Purge,
    DryRun,
    Report,
}

/// Where an interrupted walk resumes: every key up to and including `after` is done.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub after: String,
    /// Per side, the last key at or before `after` known to still be there: the listing
    /// resumes just past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_marker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_marker: Option<String>,
}

/// Keys from `start` (inclusive; `None`: the prefix's first) up to `end` (exclusive; `None`:
/// past the prefix's last).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

impl KeyRange {
    pub(crate) fn before(&self, key: &str) -> bool {
        self.start.as_deref().is_some_and(|s| key < s)
    }

    pub(crate) fn past(&self, key: &str) -> bool {
        self.end.as_deref().is_some_and(|e| key >= e)
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, key: &str) -> bool {
        !self.before(key) && !self.past(key)
    }
}

/// What a run has done so far (kept across resumes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    pub scanned_source: u64,
    pub scanned_target: u64,
    pub orphans: u64,
    pub purged: u64,
    /// Keys some of whose entries were deleted while others stay (race guard, failed delete).
    #[serde(default)]
    pub partly_purged: u64,
    pub would_purge: u64,
    pub kept: BTreeMap<KeptReason, u64>,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.scanned_source += o.scanned_source;
        self.scanned_target += o.scanned_target;
        self.orphans += o.orphans;
        self.purged += o.purged;
        self.partly_purged += o.partly_purged;
        self.would_purge += o.would_purge;
        for (r, n) in &o.kept {
            *self.kept.entry(*r).or_default() += n;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Lease {
    pub prefix: String,
    /// The shard of the prefix this lease is for.
    #[serde(flatten)]
    pub range: KeyRange,
    pub holder: String,
    pub run_id: String,
    pub kind: RunKind,
    pub status: LeaseStatus,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// How the walk of the prefix ended, once completed (a resumed run reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SweepResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    #[serde(default)]
    pub stats: Stats,
}

impl Lease {
    /// A fresh walk of `prefix` in run `run_id`, held by `holder` from `now`.
    pub(crate) fn start(
        prefix: &str,
        range: &KeyRange,
        holder: &str,
        run_id: &str,
        kind: RunKind,
        now: DateTime<Utc>,
    ) -> Lease {
        Lease {
            prefix: prefix.to_string(),
            range: range.clone(),
            holder: holder.to_string(),
            run_id: run_id.to_string(),
            kind,
            status: LeaseStatus::Running,
            started_at: now,
            updated_at: now,
            completed_at: None,
            result: None,
            checkpoint: None,
            stats: Stats::default(),
        }
    }
}

/// What a replica does about a prefix, given its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseAction {
    /// No lease, a completed one, or an interrupted run of another kind: a fresh run.
    Start,
    /// Our own interrupted run (a restart), or another's gone stale: go on from its checkpoint.
    Resume,
    /// Another replica is sweeping it now.
    Busy { holder: String },
    /// Already swept to the end in this run.
    Done,
}

/// The lease state machine, for a sweep taking part in run `run_id`.
pub(crate) fn next_action(
    lease: Option<&Lease>,
    now: DateTime<Utc>,
    holder: &str,
    ttl: Duration,
    kind: RunKind,
    run_id: &str,
) -> LeaseAction {
    let Some(l) = lease else {
        return LeaseAction::Start;
    };
    if l.status == LeaseStatus::Completed {
        return if l.run_id == run_id {
            LeaseAction::Done
        } else {
            LeaseAction::Start
        };
    }
    let stale = (now - l.updated_at).to_std().unwrap_or_default() > ttl;
    if l.holder != holder && !stale {
        return LeaseAction::Busy {
            holder: l.holder.clone(),
        };
    }
    if l.kind == kind && l.run_id == run_id {
        LeaseAction::Resume
    } else {
        LeaseAction::Start
    }
}

/// The name of `prefix`'s document (its run's shard layout, [`super::shard::Layout`]): any
/// prefix, `""` included, becomes a key of unreserved characters only (`_XX` escapes every
/// other byte, `_` included), so no client or S3-compatible store can read it differently.
pub fn name(prefix: &str) -> String {
    format!("sweeps/p-{}.json", escape(prefix))
}

/// `prefix` as unreserved characters only: `_XX` for every other byte, `_` included.
pub(crate) fn escape(prefix: &str) -> String {
    let mut out = String::new();
    for b in prefix.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 9, 3, min, 0).unwrap()
    }

    fn lease(holder: &str, status: LeaseStatus, kind: RunKind, updated: u32) -> Lease {
        Lease {
            prefix: "topics/".into(),
            range: KeyRange::default(),
            holder: holder.into(),
            run_id: "r".into(),
            kind,
            status,
            started_at: at(0),
            updated_at: at(updated),
            completed_at: None,
            result: None,
            checkpoint: None,
            stats: Stats::default(),
        }
    }

    #[test]
    fn every_transition_of_the_lease_state_machine() {
        use LeaseStatus::{Completed, Running};
        use RunKind::{Purge, Report};
        let ttl = Duration::from_secs(600);
        let now = at(30);
        let busy = |h: &str| LeaseAction::Busy { holder: h.into() };
        let cases = [
            (None, Purge, LeaseAction::Start),
            (
                Some(lease("me", Running, Purge, 29)),
                Purge,
                LeaseAction::Resume,
            ),
            (
                Some(lease("me", Running, Report, 29)),
                Purge,
                LeaseAction::Start,
            ),
            (Some(lease("b", Running, Purge, 25)), Purge, busy("b")),
            (Some(lease("b", Running, Purge, 20)), Purge, busy("b")),
            (
                Some(lease("b", Running, Purge, 19)),
                Purge,
                LeaseAction::Resume,
            ),
            (
                Some(lease("b", Running, Report, 19)),
                Purge,
                LeaseAction::Start,
            ),
        ];
        for (l, kind, want) in cases {
            assert_eq!(
                next_action(l.as_ref(), now, "me", ttl, kind, "r"),
                want,
                "{l:?} {kind:?}"
            );
        }
        // Completed in this run: done; in an earlier one: swept again.
        let done = lease("b", Completed, Purge, 29);
        assert_eq!(
            next_action(Some(&done), now, "me", ttl, Purge, "r"),
            LeaseAction::Done
        );
        assert_eq!(
            next_action(Some(&done), now, "me", ttl, Purge, "r2"),
            LeaseAction::Start
        );
        // An interrupted lease of an earlier run is not resumed into this one.
        let old = lease("me", Running, Purge, 29);
        assert_eq!(
            next_action(Some(&old), now, "me", ttl, Purge, "r2"),
            LeaseAction::Start
        );
        let busy = lease("b", Running, Purge, 29);
        assert_eq!(
            next_action(Some(&busy), now, "me", ttl, Purge, "r2"),
            LeaseAction::Busy { holder: "b".into() }
        );
    }

    #[test]
    fn lease_names_are_safe_keys() {
        assert_eq!(name("topics/"), "sweeps/p-topics_2F.json");
        assert_eq!(name(""), "sweeps/p-.json");
        assert_eq!(name("차/a b"), "sweeps/p-_EC_B0_A8_2Fa_20b.json");
        assert_ne!(
            name("a/"),
            name("a_2F"),
            "distinct prefixes, distinct leases"
        );
    }
}
