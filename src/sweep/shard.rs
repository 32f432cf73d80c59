//! Shards (pure): a sweep prefix split into key ranges that are walked in parallel and shared
//! by replicas.
//!
//! The ranges come from the target's folders a few levels below the prefix (the projects, then
//! their years, months and days in the Kafka Connect layout): each folder after the first
//! starts a range, and each range runs to where the next begins. Ranges are contiguous and
//! cover the whole prefix whatever the folders are, so keys outside every folder, and folders
//! created after the layout was made, are still swept, by the range they fall in.
//!
//! A run's layout is written once, to the prefix's document in the state bucket, with a
//! conditional write: every replica in the run reads the same ranges, and each range has its
//! own lease and checkpoint, so no range is swept twice.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) use super::lease::KeyRange;
use super::lease::{Lease, LeaseStatus, RunKind};
use crate::labels::SweepResult;

/// The prefix's document: the current run's layout, and how that run's walk of the prefix
/// ended. Another run replaces it only once none of its shards is being walked. (An earlier
/// version kept its one lease per prefix under the same name: such a document reads as a
/// layout of another run, left alone while its holder refreshes it. With `holder` here, that
/// version reads this document as a lease held by its writer.)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Layout {
    pub prefix: String,
    /// Who wrote it (an earlier version's lease: who sweeps the prefix).
    #[serde(default)]
    pub holder: String,
    pub run_id: String,
    pub kind: RunKind,
    pub status: LeaseStatus,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The worst of its shards' results, once every shard completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SweepResult>,
    /// Where each shard after the first starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Vec<String>>,
}

impl Layout {
    pub(crate) fn new(
        prefix: &str,
        run_id: &str,
        kind: RunKind,
        bounds: Vec<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Layout {
            prefix: prefix.to_string(),
            holder: String::new(),
            run_id: run_id.to_string(),
            kind,
            status: LeaseStatus::Running,
            started_at: now,
            updated_at: now,
            completed_at: None,
            result: None,
            bounds: Some(bounds),
        }
    }

    /// The shards' ranges, in key order.
    pub(crate) fn ranges(&self) -> Vec<KeyRange> {
        let bounds = self.bounds.as_deref().unwrap_or_default();
        let mut starts = vec![None];
        starts.extend(bounds.iter().cloned().map(Some));
        let mut ends: Vec<Option<String>> = bounds.iter().cloned().map(Some).collect();
        ends.push(None);
        starts
            .into_iter()
            .zip(ends)
            .map(|(start, end)| KeyRange { start, end })
            .collect()
    }

    /// Whether this is the layout of run `run_id`, usable as it is.
    pub(crate) fn serves(&self, run_id: &str, kind: RunKind) -> bool {
        self.run_id == run_id && self.kind == kind && self.bounds.is_some()
    }

    /// How the prefix's walk ended in run `run_id`, if every shard completed.
    pub(crate) fn completed_in(&self, run_id: &str) -> Option<SweepResult> {
        (self.run_id == run_id && self.status == LeaseStatus::Completed)
            .then(|| self.result.unwrap_or(SweepResult::Completed))
    }
}

/// Whether a lease (or an earlier version's prefix lease) shows a walk under way by another
/// holder: running, and refreshed within `ttl`.
pub(crate) fn live(
    status: LeaseStatus,
    holder: &str,
    updated_at: DateTime<Utc>,
    me: &str,
    now: DateTime<Utc>,
    ttl: std::time::Duration,
) -> bool {
    status == LeaseStatus::Running
        && holder != me
        && (now - updated_at).to_std().unwrap_or_default() <= ttl
}

/// Where the shards of a prefix start, given the folders found under it: every folder after
/// the first starts one (keys before the second folder, the first folder's included, make the
/// first shard), and when there are more than `cap` shards' worth, `cap` evenly spread.
pub(crate) fn bounds(mut folders: Vec<String>, cap: usize) -> Vec<String> {
    folders.sort_unstable();
    folders.dedup();
    let n = folders.len();
    let k = n.min(cap.max(1));
    (1..k).map(|j| folders[j * n / k].clone()).collect()
}

/// Whether the folders found so far are worth splitting further: fewer than the shards
/// wanted, and a level left.
pub(crate) fn split_further(found: usize, wanted: usize, level: usize, depth: usize) -> bool {
    found < wanted && level < depth
}

/// The shards a prefix is split into for `parallelism` walks at once: a few per walk, so that
/// uneven shards even out and a second replica finds some left.
pub(crate) fn wanted(parallelism: usize) -> usize {
    parallelism.saturating_mul(4).max(4)
}

/// The lease document of shard `index` of `prefix`, beside the prefix's own document.
pub(crate) fn lease_name(prefix: &str, index: usize) -> String {
    format!(
        "sweeps/p-{}/s-{index:04}.json",
        super::lease::escape(prefix)
    )
}

/// One shard of a prefix in a run.
#[derive(Debug, Clone)]
pub(crate) struct ShardRef<'a> {
    pub prefix: &'a str,
    pub index: usize,
    pub range: KeyRange,
    pub kind: RunKind,
    pub run_id: &'a str,
}

impl ShardRef<'_> {
    pub(crate) fn lease_name(&self) -> String {
        lease_name(self.prefix, self.index)
    }
}

/// What taking a shard's lease came to.
pub(crate) enum Taken {
    /// Held by this process: the lease, its ETag, and whether it resumes a checkpoint.
    Held(Box<Lease>, String, bool),
    /// Another replica is at it (or took it first).
    Busy,
    /// Done in this run already (by this replica before a restart, or another), with its result.
    Done(SweepResult),
}

/// The shard's lease as this process holds it.
pub(crate) struct Held {
    pub(crate) name: String,
    pub(crate) lease: Lease,
    pub(crate) etag: String,
    pub(crate) last_write: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn every_folder_after_the_first_starts_a_shard() {
        let f = s(&["t/b/", "t/a/", "t/c/", "t/a/"]);
        assert_eq!(bounds(f, 16), s(&["t/b/", "t/c/"]));
        assert!(bounds(s(&["t/a/"]), 16).is_empty());
        assert!(bounds(Vec::new(), 16).is_empty());
    }

    #[test]
    fn more_folders_than_shards_are_spread_evenly() {
        let f: Vec<String> = (0..100).map(|i| format!("d={i:03}/")).collect();
        assert_eq!(bounds(f, 4), s(&["d=025/", "d=050/", "d=075/"]));
    }

    #[test]
    fn ranges_run_from_one_start_to_the_next() {
        let l = Layout::new("t/", "r", RunKind::Report, s(&["t/b/", "t/c/"]), Utc::now());
        let r = l.ranges();
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].start.as_deref(), r[0].end.as_deref()),
            (None, Some("t/b/"))
        );
        assert_eq!(
            (r[1].start.as_deref(), r[1].end.as_deref()),
            (Some("t/b/"), Some("t/c/"))
        );
        assert_eq!(
            (r[2].start.as_deref(), r[2].end.as_deref()),
            (Some("t/c/"), None)
        );
        // Look-alikes fall where byte order puts them: `t/b.json` before `t/b/`, `t/b0` after.
        assert!(r[0].contains("t/b.json") && r[0].contains("t/a/x"));
        assert!(r[1].contains("t/b/") && r[1].contains("t/b0") && r[1].contains("t/b/\u{10FFFF}"));
        assert!(!r[1].contains("t/c/") && r[2].contains("t/c/"));
    }

    #[test]
    fn a_layout_serves_only_its_own_run_and_kind() {
        let l = Layout::new("t/", "r", RunKind::Purge, vec![], Utc::now());
        assert!(l.serves("r", RunKind::Purge));
        assert!(!l.serves("r2", RunKind::Purge));
        assert!(!l.serves("r", RunKind::Report));
        let mut old = l.clone();
        old.bounds = None;
        assert!(
            !old.serves("r", RunKind::Purge),
            "an earlier version's lease"
        );
        assert_eq!(l.completed_in("r"), None);
        let mut done = l;
        done.status = LeaseStatus::Completed;
        assert_eq!(done.completed_in("r"), Some(SweepResult::Completed));
        assert_eq!(done.completed_in("r2"), None);
    }

    #[test]
    fn an_earlier_versions_prefix_lease_reads_as_a_foreign_layout() {
        let old = r#"{"prefix":"p/","holder":"h","run_id":"r","kind":"purge","status":"running",
            "started_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z",
            "checkpoint":{"after":"p/k"},"stats":{"scanned_source":0,"scanned_target":0,
            "orphans":0,"purged":0,"would_purge":0,"kept":{}}}"#;
        let l: Layout = serde_json::from_str(old).unwrap();
        assert!(!l.serves("r", RunKind::Purge));
    }

    #[test]
    fn splitting_stops_at_enough_shards_or_the_depth() {
        assert!(split_further(1, 16, 0, 4));
        assert!(!split_further(16, 16, 0, 4));
        assert!(!split_further(3, 16, 4, 4));
        assert!(!split_further(0, 16, 0, 0));
        assert_eq!((wanted(1), wanted(4), wanted(8)), (4, 16, 32));
    }

    #[test]
    fn a_walk_is_live_while_another_holder_refreshes_it() {
        let now = Utc::now();
        let ttl = std::time::Duration::from_secs(600);
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        assert!(live(LeaseStatus::Running, "b", ago(60), "a", now, ttl));
        assert!(
            !live(LeaseStatus::Running, "b", ago(601), "a", now, ttl),
            "stale"
        );
        assert!(
            !live(LeaseStatus::Running, "a", ago(60), "a", now, ttl),
            "our own"
        );
        assert!(!live(LeaseStatus::Completed, "b", ago(60), "a", now, ttl));
    }

    #[test]
    fn shard_leases_are_named_per_prefix() {
        assert_eq!(lease_name("topics/", 7), "sweeps/p-topics_2F/s-0007.json");
        assert_ne!(lease_name("a/", 0), lease_name("a_2F", 0));
    }

    proptest! {
        /// Whatever the folders and the cap, the ranges partition the key space: every key is
        /// in exactly one, and there are at most `cap`.
        #[test]
        fn ranges_partition_every_key(
            folders in proptest::collection::vec("[a-c/.]{0,4}", 0..30),
            keys in proptest::collection::vec("[a-c/.\u{e9}]{0,5}", 1..30),
            cap in 1usize..10,
        ) {
            let b = bounds(folders, cap);
            prop_assert!(b.len() < cap.max(1));
            prop_assert!(b.windows(2).all(|w| w[0] < w[1]));
            let l = Layout::new("", "r", RunKind::Report, b, Utc::now());
            let ranges = l.ranges();
            for k in &keys {
                prop_assert_eq!(ranges.iter().filter(|r| r.contains(k)).count(), 1, "{}", k);
            }
        }
    }
}
