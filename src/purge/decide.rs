//! The purge decision, from current state rather than from the event, so replays are safe.
//!
//! Inputs are the source's and target's listings (versions and delete markers) of exactly one
//! key, what proves a target version is a replica, and the guards' cutoffs. Output is what to
//! delete, in two steps, or why nothing is deleted. Every delete path (events, the sweep,
//! `purge KEY`) goes through [`decide`].

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};

pub use crate::aws::s3::Entry;
use crate::config::{MarkerOnlySource, PurgeConfig, PurgeMode};
pub(crate) use crate::labels::Side;

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

/// The time guards of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Guards {
    /// The race guard: the source listing's start minus the margin. A target entry modified
    /// at or after it may have been copied after the source was read; it is not deleted now.
    pub cutoff: DateTime<Utc>,
    /// The sweep's `min_age`: a target entry modified after this (or of unknown age) keeps the
    /// whole key, on the listing that decides as on the walk that nominated it.
    pub young_after: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The source still holds something for the key (`when-source-empty`, and
    /// `mirror-versions` when nothing proven a replica of a lost version is in the target).
    SourcePresent { source_entries: usize },
    /// Nothing in the target needs deleting.
    NothingToDelete,
    /// `mirror-versions`: target entries the source does not have, none of them proven to be a
    /// replica of a version the source lost (DataSync copies, lifecycle markers, `null`
    /// versions, anything a person wrote). Left alone.
    NotReplica { entries: usize },
    /// A target entry is younger than the sweep's `min_age`.
    TooYoung,
    /// Delete `versions` first; only once every one of them is confirmed deleted, delete
    /// `markers` (a marker removed while a version it hides survives would make the key
    /// visible). `markers` is empty unless no data version of the key would remain.
    /// `deferred` counts entries the guards left for later: when non-zero the caller must look
    /// again.
    Delete {
        versions: Vec<Entry>,
        markers: Vec<Entry>,
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
///    (with `marker_only_source = "purge"`, delete markers alone are not "anything": the data
///    is gone). `mirror-versions`: a key the source no longer holds is purged whole, as in
///    `when-source-empty`; otherwise only target entries whose version id the source no
///    longer has *and* that `replicas` proves to be replicas (S3 Replication keeps version
///    ids) are candidates. Both listings must be complete.
/// 3. A target listing cut at the limit is refused (`max_versions_per_key`).
/// 4. `young_after` (the sweep's `min_age`): any younger target entry keeps the key.
/// 5. Race guard: a target entry modified at or after `cutoff` is never deleted now.
/// 6. Delete markers go last, and only when no data version of the key remains.
pub(crate) fn decide(
    policy: &Policy,
    key: &str,
    source: &KeyListing,
    target: &KeyListing,
    replicas: &BTreeSet<String>,
    guards: Guards,
) -> Decision {
    let source_entries: Vec<&Entry> = source.entries.iter().filter(|e| e.key == key).collect();
    let target_entries: Vec<&Entry> = target.entries.iter().filter(|e| e.key == key).collect();
    let listings = Listings {
        source: &source_entries,
        source_complete: source.complete,
        target: &target_entries,
        target_complete: target.complete,
    };
    let candidates = match candidates(policy, &listings, replicas) {
        Ok(c) if c.is_empty() => return Decision::NothingToDelete,
        Ok(c) => c,
        Err(decided) => return decided,
    };
    if let Some(young) = guards.young_after
        && target_entries
            .iter()
            .any(|e| e.last_modified.is_none_or(|t| t > young))
    {
        return Decision::TooYoung;
    }
    guarded(candidates, &target_entries, guards.cutoff)
}

/// One key's entries on both sides (exactly the key), and whether each listing was complete.
struct Listings<'a> {
    source: &'a [&'a Entry],
    source_complete: bool,
    target: &'a [&'a Entry],
    target_complete: bool,
}

/// Guards 2 and 3: the target entries the mode allows deleting, or the decision that none
/// may be.
fn candidates<'a>(
    policy: &Policy,
    l: &Listings<'a>,
    replicas: &BTreeSet<String>,
) -> Result<Vec<&'a Entry>, Decision> {
    let limit = policy.limit;
    let holds = policy.source_holds(l.source, l.source_complete);
    match policy.mode {
        PurgeMode::WhenSourceEmpty => {
            if holds {
                return Err(Decision::SourcePresent {
                    source_entries: l.source.len(),
                });
            }
            if !l.target_complete {
                return Err(Decision::Refused {
                    side: Side::Target,
                    limit,
                });
            }
            Ok(l.target.to_vec())
        }
        PurgeMode::MirrorVersions => {
            for (side, complete) in [
                (Side::Source, l.source_complete),
                (Side::Target, l.target_complete),
            ] {
                if !complete {
                    return Err(Decision::Refused { side, limit });
                }
            }
            if !holds {
                return Ok(l.target.to_vec());
            }
            lost_replicas(l.source, l.target, replicas)
        }
    }
}

/// `mirror-versions` while the source holds the key: the target's replicas of versions the
/// source no longer has (S3 Replication keeps version ids), and nothing else.
fn lost_replicas<'a>(
    source: &[&Entry],
    target: &[&'a Entry],
    replicas: &BTreeSet<String>,
) -> Result<Vec<&'a Entry>, Decision> {
    let kept: HashSet<&str> = source.iter().map(|e| e.version_id.as_str()).collect();
    let absent: Vec<&Entry> = target
        .iter()
        .copied()
        .filter(|e| !kept.contains(e.version_id.as_str()))
        .collect();
    let proven: Vec<&Entry> = absent
        .iter()
        .copied()
        .filter(|e| replicas.contains(&e.version_id))
        .collect();
    match (proven.is_empty(), absent.is_empty()) {
        (false, _) => Ok(proven),
        (true, true) => Err(Decision::NothingToDelete),
        (true, false) => Err(Decision::NotReplica {
            entries: absent.len(),
        }),
    }
}

/// Guards 5 and 6 on the candidates: nothing modified at or after `cutoff` now, and delete
/// markers only when no data version of the key remains.
fn guarded(candidates: Vec<&Entry>, target: &[&Entry], cutoff: DateTime<Utc>) -> Decision {
    let (old, protected): (Vec<&Entry>, Vec<&Entry>) = candidates
        .into_iter()
        .partition(|e| e.last_modified.is_some_and(|t| t < cutoff));
    let (markers, versions): (Vec<&Entry>, Vec<&Entry>) =
        old.into_iter().partition(|e| e.delete_marker);
    let going: HashSet<&str> = versions.iter().map(|e| e.version_id.as_str()).collect();
    let data_stays = target
        .iter()
        .any(|e| !e.delete_marker && !going.contains(e.version_id.as_str()));
    let mut deferred = protected.len();
    let markers = if data_stays {
        // Held back with the data they may hide; looked at again only if the race guard is
        // why the data stays (otherwise it stays for good and so do they).
        if !protected.is_empty() {
            deferred += markers.len();
        }
        Vec::new()
    } else {
        markers
    };
    if versions.is_empty() && markers.is_empty() {
        return if deferred > 0 {
            Decision::Deferred {
                protected: deferred,
            }
        } else {
            Decision::NothingToDelete
        };
    }
    Decision::Delete {
        versions: versions.into_iter().cloned().collect(),
        markers: markers.into_iter().cloned().collect(),
        deferred,
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
        super::decide(&p, key, source, target, &BTreeSet::new(), guards(cutoff))
    }

    fn guards(cutoff: DateTime<Utc>) -> Guards {
        Guards {
            cutoff,
            young_after: None,
        }
    }

    /// The version ids a `Delete` removes, versions then markers, and what it deferred.
    fn deleted(d: &Decision) -> (Vec<&str>, usize) {
        match d {
            Decision::Delete {
                versions,
                markers,
                deferred,
            } => (
                versions
                    .iter()
                    .chain(markers)
                    .map(|e| e.version_id.as_str())
                    .collect(),
                *deferred,
            ),
            other => panic!("not a delete: {other:?}"),
        }
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
        assert_eq!(deleted(&d), (vec!["v1", "dm1"], 0));
        match d {
            Decision::Delete {
                versions, markers, ..
            } => {
                assert!(versions.iter().chain(&markers).all(|e| e.key == "a.txt"));
                assert!(versions.iter().all(|e| !e.delete_marker));
                assert!(markers.iter().all(|e| e.delete_marker));
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
            let d = decide(mode, key, &none(), &all(&target), LIMIT, t(30));
            assert_eq!(deleted(&d), (vec!["real", "real-dm"], 0), "{mode:?}");
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
        let d = decide(
            PurgeMode::WhenSourceEmpty,
            key,
            &source,
            &all(&target),
            LIMIT,
            t(30),
        );
        assert_eq!(deleted(&d).0.len(), 2);
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
        let none = BTreeSet::new();
        assert_eq!(
            super::decide(&keep, "k", &markers_only, &target, &none, guards(t(30))),
            Decision::SourcePresent { source_entries: 1 }
        );
        let d = super::decide(&purge, "k", &markers_only, &target, &none, guards(t(30)));
        assert_eq!(deleted(&d).0.len(), 2);
        // Data anywhere among the source's entries keeps the target, whatever the setting.
        let with_data = all(&[e("k", "dm", true, 20), e("k", "v0", false, 19)]);
        for p in [keep, purge] {
            assert!(matches!(
                super::decide(&p, "k", &with_data, &target, &none, guards(t(30))),
                Decision::SourcePresent { .. }
            ));
        }
        // A look-alike's data does not count for the key.
        let look_alike = all(&[e("k.bak", "v", false, 1), e("k", "dm", true, 20)]);
        assert!(matches!(
            super::decide(&purge, "k", &look_alike, &target, &none, guards(t(30))),
            Decision::Delete { .. }
        ));
    }

    fn mirror(source: &[Entry], target: &[Entry], replicas: &[&str]) -> Decision {
        let replicas: BTreeSet<String> = replicas.iter().map(|s| s.to_string()).collect();
        super::decide(
            &policy(PurgeMode::MirrorVersions),
            "k",
            &all(source),
            &all(target),
            &replicas,
            guards(t(30)),
        )
    }

    #[test]
    fn mirror_versions_deletes_only_proven_replicas_of_lost_versions() {
        let source = [e("k", "v2", false, 5)];
        // v1: a replica of a version the source lost. ds: a DataSync copy (new id). lc: the
        // target's own lifecycle marker. null: written before versioning.
        let target = [
            e("k", "v1", false, 1),
            e("k", "v2", false, 5),
            e("k", "ds", false, 6),
            e("k", "lc", true, 7),
            e("k", "null", false, 0),
        ];
        assert_eq!(deleted(&mirror(&source, &target, &["v1"])), (vec!["v1"], 0));
        // Nothing proven: everything absent from the source is left, and said so.
        assert_eq!(
            mirror(&source, &target, &[]),
            Decision::NotReplica { entries: 4 }
        );
        // A proof of an id the source still has changes nothing.
        assert_eq!(
            mirror(&source, &target, &["v2"]),
            Decision::NotReplica { entries: 4 }
        );
        // In step: nothing to delete.
        assert_eq!(mirror(&source, &source, &[]), Decision::NothingToDelete);
        // A key the source no longer holds is purged whole, proof or not: versions, then
        // markers.
        assert_eq!(
            deleted(&mirror(&[], &target, &[])),
            (vec!["v1", "v2", "ds", "null", "lc"], 0)
        );
    }

    #[test]
    fn a_proven_marker_goes_only_when_no_data_version_stays() {
        // The source permanently deleted its marker dm; the target's replica of it hides v2.
        let source = [e("k", "v2", false, 5)];
        let target = [e("k", "v2", false, 5), e("k", "dm", true, 6)];
        assert_eq!(
            mirror(&source, &target, &["dm"]),
            Decision::NothingToDelete,
            "deleting dm would make the hidden key visible"
        );
        // With the data gone too, the marker goes after it.
        let target = [e("k", "v1", false, 1), e("k", "dm", true, 6)];
        assert_eq!(
            deleted(&mirror(&source, &target, &["v1", "dm"])),
            (vec!["v1", "dm"], 0)
        );
    }

    #[test]
    fn markers_wait_for_the_versions_they_hide() {
        let target = all(&[
            e("k", "v1", false, 1),
            e("k", "dm1", true, 2),
            e("k", "v2", false, 29),
            e("k", "dm2", true, 3),
        ]);
        // v2 is protected by the race guard: the markers stay with it, and count as deferred.
        let d = decide(
            PurgeMode::WhenSourceEmpty,
            "k",
            &none(),
            &target,
            LIMIT,
            t(25),
        );
        assert_eq!(deleted(&d), (vec!["v1"], 3));
        // All old: versions first, then markers.
        let d = decide(
            PurgeMode::WhenSourceEmpty,
            "k",
            &none(),
            &target,
            LIMIT,
            t(59),
        );
        match d {
            Decision::Delete {
                versions, markers, ..
            } => {
                let ids = |v: &[Entry]| v.iter().map(|e| e.version_id.clone()).collect::<Vec<_>>();
                assert_eq!(ids(&versions), vec!["v1", "v2"]);
                assert_eq!(ids(&markers), vec!["dm1", "dm2"]);
            }
            other => panic!("{other:?}"),
        }
        // Markers alone: nothing to hide, they go at once.
        let markers_only = all(&[e("k", "dm1", true, 2)]);
        let d = decide(
            PurgeMode::WhenSourceEmpty,
            "k",
            &none(),
            &markers_only,
            LIMIT,
            t(30),
        );
        assert_eq!(deleted(&d), (vec!["dm1"], 0));
    }

    #[test]
    fn the_sweeps_min_age_is_checked_on_the_deciding_listing() {
        let target = all(&[e("k", "v1", false, 1), e("k", "v2", false, 20)]);
        let p = policy(PurgeMode::WhenSourceEmpty);
        let no_proof = BTreeSet::new();
        let at = |young: u32| Guards {
            cutoff: t(59),
            young_after: Some(t(young)),
        };
        assert_eq!(
            super::decide(&p, "k", &none(), &target, &no_proof, at(10)),
            Decision::TooYoung
        );
        assert!(matches!(
            super::decide(&p, "k", &none(), &target, &no_proof, at(20)),
            Decision::Delete { .. }
        ));
        // A look-alike's youth does not count.
        let with_look_alike = all(&[e("k", "v1", false, 1), e("k.bak", "x", false, 40)]);
        assert!(matches!(
            super::decide(&p, "k", &none(), &with_look_alike, &no_proof, at(10)),
            Decision::Delete { .. }
        ));
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
            d @ Decision::Delete { .. } => assert_eq!(deleted(&d), (vec!["old"], 1)),
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
