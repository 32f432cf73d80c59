//! The purge decision, from current state rather than from the event, so replays are safe.
//!
//! Inputs are the source's and target's listings (versions and delete markers) of exactly one
//! key, and the race-guard cutoff. Output is the list of target entries to delete, or why
//! nothing is deleted. Every delete path (events, `purge KEY`) goes through [`decide`].

use std::collections::HashSet;

use chrono::{DateTime, Utc};

pub use crate::aws::s3::Entry;
use crate::config::{MarkerOnlySource, PurgeConfig, PurgeMode};

/// The rules a decision applies, from `[purge]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub mode: PurgeMode,
    pub marker_only_source: MarkerOnlySource,
    /// `max_versions_per_key`: more entries than this on a side and the decision is refused.
    pub limit: usize,
}

impl Policy {
    pub(crate) fn from_config(c: &PurgeConfig) -> Self {
        Policy {
            mode: c.mode,
            marker_only_source: c.marker_only_source,
            limit: c.max_versions_per_key.get(),
        }
    }

    /// Whether the source still holds the key, in `when-source-empty` terms.
    pub(crate) fn source_holds(&self, source: &[&Entry], complete: bool) -> bool {
        match self.marker_only_source {
            MarkerOnlySource::Keep => !source.is_empty(),
            // A listing cut at the limit is not looked into: it certainly holds data.
            MarkerOnlySource::Purge => !complete || source.iter().any(|e| !e.delete_marker),
        }
    }
}

/// A key's entries as listed on one side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyListing {
    pub entries: Vec<Entry>,
    /// False when the key has more entries than the listing was allowed to collect
    /// (`purge.max_versions_per_key`): `entries` is then only the first of them.
    pub complete: bool,
}

impl KeyListing {
    pub fn complete(entries: Vec<Entry>) -> Self {
        KeyListing {
            entries,
            complete: true,
        }
    }
}

/// Which side a listing came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Source,
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// `when-source-empty`: the source still holds something for the key.
    SourcePresent { source_entries: usize },
    /// Nothing in the target needs deleting.
    NothingToDelete,
    /// Delete these target entries. `deferred` counts entries the race guard protected:
    /// when non-zero the caller must retry later so they are looked at again.
    Delete {
        entries: Vec<Entry>,
        deferred: usize,
    },
    /// Every candidate was protected by the race guard: retry later.
    Deferred { protected: usize },
    /// A guardrail refuses to decide: a listing had more entries than `limit`.
    Refused { side: Side, limit: usize },
}

/// Decides what to delete in the target for `key`.
///
/// Guards, in order:
/// 1. Only entries whose key is exactly `key` are considered (a prefix listing of `a.txt` also
///    returns `a.txt.bak` and `a.txt/x`).
/// 2. `when-source-empty`: anything left in the source for the key means nothing is deleted
///    (with `marker_only_source = "purge"`, delete markers alone are not "anything": the
///    data is gone). `mirror-versions`: only version ids the source no longer has are
///    candidates, which needs the source's complete list.
/// 3. A target listing cut at the limit is refused (`max_versions_per_key`).
/// 4. Race guard: a target entry modified at or after `cutoff` (source listing start minus the
///    margin) may have been copied after the source was read; it is never deleted now.
pub(crate) fn decide(
    policy: &Policy,
    key: &str,
    source: &KeyListing,
    target: &KeyListing,
    cutoff: DateTime<Utc>,
) -> Decision {
    let limit = policy.limit;
    let source_entries: Vec<&Entry> = source.entries.iter().filter(|e| e.key == key).collect();
    let target_entries = target.entries.iter().filter(|e| e.key == key);
    let candidates: Vec<&Entry> = match policy.mode {
        PurgeMode::WhenSourceEmpty => {
            if policy.source_holds(&source_entries, source.complete) {
                return Decision::SourcePresent {
                    source_entries: source_entries.len(),
                };
            }
            if !target.complete {
                return Decision::Refused {
                    side: Side::Target,
                    limit,
                };
            }
            target_entries.collect()
        }
        PurgeMode::MirrorVersions => {
            for (side, listing) in [(Side::Source, source), (Side::Target, target)] {
                if !listing.complete {
                    return Decision::Refused { side, limit };
                }
            }
            let kept: HashSet<&str> = source_entries
                .iter()
                .map(|e| e.version_id.as_str())
                .collect();
            target_entries
                .filter(|e| !kept.contains(e.version_id.as_str()))
                .collect()
        }
    };
    if candidates.is_empty() {
        return Decision::NothingToDelete;
    }
    let (entries, protected): (Vec<&Entry>, Vec<&Entry>) = candidates
        .into_iter()
        .partition(|e| e.last_modified.is_some_and(|t| t < cutoff));
    if entries.is_empty() {
        return Decision::Deferred {
            protected: protected.len(),
        };
    }
    Decision::Delete {
        entries: entries.into_iter().cloned().collect(),
        deferred: protected.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const LIMIT: usize = 10_000;

    fn policy(mode: PurgeMode) -> Policy {
        Policy {
            mode,
            marker_only_source: MarkerOnlySource::Purge,
            limit: LIMIT,
        }
    }

    /// The old argument order, so each case reads as before: mode, key, source, target,
    /// limit, cutoff.
    fn decide(
        mode: PurgeMode,
        key: &str,
        source: &KeyListing,
        target: &KeyListing,
        limit: usize,
        cutoff: DateTime<Utc>,
    ) -> Decision {
        let p = Policy {
            limit,
            ..policy(mode)
        };
        super::decide(&p, key, source, target, cutoff)
    }

    fn t(sec: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 12, 14, 11, 0, sec).unwrap()
    }

    fn e(key: &str, v: &str, dm: bool, sec: u32) -> Entry {
        Entry {
            key: key.into(),
            version_id: v.into(),
            delete_marker: dm,
            last_modified: Some(t(sec)),
        }
    }

    fn all(entries: &[Entry]) -> KeyListing {
        KeyListing::complete(entries.to_vec())
    }

    fn none() -> KeyListing {
        KeyListing::complete(Vec::new())
    }

    #[test]
    fn purges_every_version_and_marker_of_the_exact_key_only() {
        let target = vec![
            e("a.txt", "v1", false, 1),
            e("a.txt", "dm1", true, 2),
            e("a.txt.bak", "v9", false, 1),
            e("a.txt/x", "v8", false, 1),
            e("a.tx", "v7", false, 1),
        ];
        let d = decide(
            PurgeMode::WhenSourceEmpty,
            "a.txt",
            &none(),
            &all(&target),
            LIMIT,
            t(30),
        );
        match d {
            Decision::Delete { entries, deferred } => {
                assert_eq!(deferred, 0);
                let ids: Vec<&str> = entries.iter().map(|e| e.version_id.as_str()).collect();
                assert_eq!(ids, vec!["v1", "dm1"]);
                assert!(entries.iter().all(|e| e.key == "a.txt"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn source_still_holding_the_key_blocks_everything() {
        let target = all(&[e("a.txt", "v1", false, 1)]);
        let source = all(&[e("a.txt", "new", false, 20)]);
        assert_eq!(
            decide(
                PurgeMode::WhenSourceEmpty,
                "a.txt",
                &source,
                &target,
                LIMIT,
                t(30)
            ),
            Decision::SourcePresent { source_entries: 1 }
        );
        // A source listing cut at the limit certainly holds the key.
        let many = KeyListing {
            entries: vec![e("a.txt", "x", false, 1)],
            complete: false,
        };
        assert!(matches!(
            decide(
                PurgeMode::WhenSourceEmpty,
                "a.txt",
                &many,
                &target,
                LIMIT,
                t(30)
            ),
            Decision::SourcePresent { .. }
        ));
    }

    /// Keys a prefix listing, a careless decode or a case-insensitive compare would confuse
    /// with the real one. None of them may ever be chosen, in either mode.
    #[test]
    fn no_look_alike_is_ever_chosen() {
        let key = "topics/car/year=2024/month=12/day=13/car+0+0000001234.json";
        let look_alikes = [
            "topics/car/year=2024/month=12/day=13/car+0+0000001234.json.bak",
            "topics/car/year=2024/month=12/day=13/car+0+0000001234.json/x",
            "topics/car/year=2024/month=12/day=13/car+0+0000001234.jso",
            "topics/car/year=2024/month=12/day=13/car 0 0000001234.json",
            "topics/car/year=2024/month=12/day=13/car%2B0%2B0000001234.json",
            "topics/car/year%3D2024/month%3D12/day%3D13/car+0+0000001234.json",
            "Topics/car/year=2024/month=12/day=13/car+0+0000001234.json",
            "topics/car/year=2024/month=12/day=13/car+0+0000001234.json ",
            "/topics/car/year=2024/month=12/day=13/car+0+0000001234.json",
            "topics/car/year=2024/month=12/day=1/car+0+0000001234.json",
            // NFD spelling of an NFC name is a different key to S3.
            "topics/car/year=2024/month=12/day=13/cafe\u{301}.json",
        ];
        let mut target: Vec<Entry> = look_alikes
            .iter()
            .enumerate()
            .map(|(i, k)| e(k, &format!("la{i}"), i % 2 == 0, 1))
            .collect();
        target.push(e(key, "real", false, 1));
        target.push(e(key, "real-dm", true, 2));
        for mode in [PurgeMode::WhenSourceEmpty, PurgeMode::MirrorVersions] {
            match decide(mode, key, &none(), &all(&target), LIMIT, t(30)) {
                Decision::Delete { entries, deferred } => {
                    assert_eq!(deferred, 0);
                    let ids: Vec<&str> = entries.iter().map(|e| e.version_id.as_str()).collect();
                    assert_eq!(ids, vec!["real", "real-dm"], "{mode:?}");
                }
                other => panic!("{mode:?}: {other:?}"),
            }
            // Look-alikes alone, in the target only: nothing to delete.
            assert_eq!(
                decide(
                    mode,
                    key,
                    &none(),
                    &all(&target[..look_alikes.len()]),
                    LIMIT,
                    t(30)
                ),
                Decision::NothingToDelete,
                "{mode:?}"
            );
        }
        // Look-alikes in the source neither block nor protect anything.
        let source = all(&target[..look_alikes.len()]);
        assert!(matches!(
            decide(PurgeMode::WhenSourceEmpty, key, &source, &all(&target), LIMIT, t(30)),
            Decision::Delete { ref entries, .. } if entries.len() == 2
        ));
    }

    #[test]
    fn a_source_holding_only_delete_markers_follows_the_setting() {
        let target = all(&[e("k", "v1", false, 1), e("k", "dm0", true, 2)]);
        let markers_only = all(&[e("k", "dm", true, 20)]);
        let keep = Policy {
            marker_only_source: MarkerOnlySource::Keep,
            ..policy(PurgeMode::WhenSourceEmpty)
        };
        let purge = policy(PurgeMode::WhenSourceEmpty);
        assert_eq!(
            super::decide(&keep, "k", &markers_only, &target, t(30)),
            Decision::SourcePresent { source_entries: 1 }
        );
        assert!(matches!(
            super::decide(&purge, "k", &markers_only, &target, t(30)),
            Decision::Delete { ref entries, .. } if entries.len() == 2
        ));
        // Data anywhere among the source's entries keeps the target, whatever the setting.
        let with_data = all(&[e("k", "dm", true, 20), e("k", "v0", false, 19)]);
        for p in [keep, purge] {
            assert!(matches!(
                super::decide(&p, "k", &with_data, &target, t(30)),
                Decision::SourcePresent { .. }
            ));
        }
        // A look-alike's data does not count for the key.
        let look_alike = all(&[e("k.bak", "v", false, 1), e("k", "dm", true, 20)]);
        assert!(matches!(
            super::decide(&purge, "k", &look_alike, &target, t(30)),
            Decision::Delete { .. }
        ));
    }

    #[test]
    fn mirror_versions_deletes_only_ids_gone_from_source() {
        let source = all(&[e("k", "v2", false, 5), e("k", "dm", true, 6)]);
        let target = all(&[
            e("k", "v1", false, 1),
            e("k", "v2", false, 5),
            e("k", "dm", true, 6),
        ]);
        match decide(
            PurgeMode::MirrorVersions,
            "k",
            &source,
            &target,
            LIMIT,
            t(30),
        ) {
            Decision::Delete { entries, .. } => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].version_id, "v1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(
                PurgeMode::MirrorVersions,
                "k",
                &target,
                &target,
                LIMIT,
                t(30)
            ),
            Decision::NothingToDelete
        );
    }

    #[test]
    fn a_listing_cut_at_the_limit_is_refused() {
        let cut = KeyListing {
            entries: vec![e("k", "v1", false, 1)],
            complete: false,
        };
        assert_eq!(
            decide(PurgeMode::WhenSourceEmpty, "k", &none(), &cut, 1, t(30)),
            Decision::Refused {
                side: Side::Target,
                limit: 1
            }
        );
        // Mirroring needs the source's full set of ids.
        assert_eq!(
            decide(PurgeMode::MirrorVersions, "k", &cut, &none(), 1, t(30)),
            Decision::Refused {
                side: Side::Source,
                limit: 1
            }
        );
    }

    #[test]
    fn race_guard_protects_recent_target_versions() {
        let target = all(&[e("k", "old", false, 1), e("k", "fresh", false, 30)]);
        match decide(
            PurgeMode::WhenSourceEmpty,
            "k",
            &none(),
            &target,
            LIMIT,
            t(30),
        ) {
            Decision::Delete { entries, deferred } => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].version_id, "old");
                assert_eq!(deferred, 1);
            }
            other => panic!("{other:?}"),
        }
        let only_fresh = all(&[e("k", "fresh", false, 31)]);
        assert_eq!(
            decide(
                PurgeMode::WhenSourceEmpty,
                "k",
                &none(),
                &only_fresh,
                LIMIT,
                t(30)
            ),
            Decision::Deferred { protected: 1 }
        );
        // No timestamp at all: cannot prove it is old, so it is protected.
        let unknown = all(&[Entry {
            last_modified: None,
            ..e("k", "x", false, 0)
        }]);
        assert_eq!(
            decide(
                PurgeMode::WhenSourceEmpty,
                "k",
                &none(),
                &unknown,
                LIMIT,
                t(30)
            ),
            Decision::Deferred { protected: 1 }
        );
    }

    #[test]
    fn empty_target_is_nothing_to_delete() {
        assert_eq!(
            decide(
                PurgeMode::WhenSourceEmpty,
                "k",
                &none(),
                &none(),
                LIMIT,
                t(30)
            ),
            Decision::NothingToDelete
        );
    }
}
