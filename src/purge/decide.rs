//! The purge decision, from current state rather than from the event, so replays are safe.
//!
//! Inputs are the source's and target's entries (versions and delete markers) of exactly one
//! key, and the time the source listing started. Output is the list of target entries to
//! delete, or why nothing is deleted.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::config::PurgeMode;

/// One version or delete marker of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub version_id: String,
    pub delete_marker: bool,
    pub last_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
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
}

/// Decides what to delete in the target for `key`.
///
/// Guards, in order:
/// 1. Only entries whose key is exactly `key` are considered (a prefix listing of `a.txt` also
///    returns `a.txt.bak` and `a.txt/x`).
/// 2. `when-source-empty`: anything left in the source for the key means nothing is deleted.
///    `mirror-versions`: only version ids the source no longer has are candidates.
/// 3. Race guard: a target entry modified at or after `cutoff` (source listing start minus the
///    margin) may have been copied after the source was read; it is never deleted now.
pub fn decide(
    mode: PurgeMode,
    key: &str,
    source: &[Entry],
    target: &[Entry],
    cutoff: DateTime<Utc>,
) -> Decision {
    let source: Vec<&Entry> = source.iter().filter(|e| e.key == key).collect();
    let target = target.iter().filter(|e| e.key == key);
    let candidates: Vec<&Entry> = match mode {
        PurgeMode::WhenSourceEmpty => {
            if !source.is_empty() {
                return Decision::SourcePresent {
                    source_entries: source.len(),
                };
            }
            target.collect()
        }
        PurgeMode::MirrorVersions => {
            let kept: HashSet<&str> = source.iter().map(|e| e.version_id.as_str()).collect();
            target
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

    #[test]
    fn purges_every_version_and_marker_of_the_exact_key_only() {
        let target = vec![
            e("a.txt", "v1", false, 1),
            e("a.txt", "dm1", true, 2),
            e("a.txt.bak", "v9", false, 1),
            e("a.txt/x", "v8", false, 1),
            e("a.tx", "v7", false, 1),
        ];
        match decide(PurgeMode::WhenSourceEmpty, "a.txt", &[], &target, t(30)) {
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
        let source = vec![e("a.txt", "new", false, 20)];
        let target = vec![e("a.txt", "v1", false, 1)];
        assert_eq!(
            decide(PurgeMode::WhenSourceEmpty, "a.txt", &source, &target, t(30)),
            Decision::SourcePresent { source_entries: 1 }
        );
        // A delete marker alone in the source also counts as "still holds something".
        let source = vec![e("a.txt", "dm", true, 20)];
        assert!(matches!(
            decide(PurgeMode::WhenSourceEmpty, "a.txt", &source, &target, t(30)),
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
        ];
        let mut target: Vec<Entry> = look_alikes
            .iter()
            .enumerate()
            .map(|(i, k)| e(k, &format!("la{i}"), i % 2 == 0, 1))
            .collect();
        target.push(e(key, "real", false, 1));
        target.push(e(key, "real-dm", true, 2));
        for mode in [PurgeMode::WhenSourceEmpty, PurgeMode::MirrorVersions] {
            match decide(mode, key, &[], &target, t(30)) {
                Decision::Delete { entries, deferred } => {
                    assert_eq!(deferred, 0);
                    let ids: Vec<&str> = entries.iter().map(|e| e.version_id.as_str()).collect();
                    assert_eq!(ids, vec!["real", "real-dm"], "{mode:?}");
                }
                other => panic!("{mode:?}: {other:?}"),
            }
            // Look-alikes alone, in the target only: nothing to delete.
            assert_eq!(
                decide(mode, key, &[], &target[..look_alikes.len()], t(30)),
                Decision::NothingToDelete,
                "{mode:?}"
            );
        }
        // Look-alikes in the source neither block nor protect anything.
        let source: Vec<Entry> = target[..look_alikes.len()].to_vec();
        assert!(matches!(
            decide(PurgeMode::WhenSourceEmpty, key, &source, &target, t(30)),
            Decision::Delete { ref entries, .. } if entries.len() == 2
        ));
    }

    #[test]
    fn look_alike_source_keys_do_not_block() {
        let source = vec![e("a.txt.bak", "x", false, 1)];
        let target = vec![e("a.txt", "v1", false, 1)];
        assert!(matches!(
            decide(PurgeMode::WhenSourceEmpty, "a.txt", &source, &target, t(30)),
            Decision::Delete { .. }
        ));
    }

    #[test]
    fn mirror_versions_deletes_only_ids_gone_from_source() {
        let source = vec![e("k", "v2", false, 5), e("k", "dm", true, 6)];
        let target = vec![
            e("k", "v1", false, 1),
            e("k", "v2", false, 5),
            e("k", "dm", true, 6),
        ];
        match decide(PurgeMode::MirrorVersions, "k", &source, &target, t(30)) {
            Decision::Delete { entries, .. } => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].version_id, "v1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(PurgeMode::MirrorVersions, "k", &target, &target, t(30)),
            Decision::NothingToDelete
        );
    }

    #[test]
    fn race_guard_protects_recent_target_versions() {
        let target = vec![e("k", "old", false, 1), e("k", "fresh", false, 30)];
        match decide(PurgeMode::WhenSourceEmpty, "k", &[], &target, t(30)) {
            Decision::Delete { entries, deferred } => {
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].version_id, "old");
                assert_eq!(deferred, 1);
            }
            other => panic!("{other:?}"),
        }
        let only_fresh = vec![e("k", "fresh", false, 31)];
        assert_eq!(
            decide(PurgeMode::WhenSourceEmpty, "k", &[], &only_fresh, t(30)),
            Decision::Deferred { protected: 1 }
        );
        // No timestamp at all: cannot prove it is old, so it is protected.
        let unknown = vec![Entry {
            last_modified: None,
            ..e("k", "x", false, 0)
        }];
        assert_eq!(
            decide(PurgeMode::WhenSourceEmpty, "k", &[], &unknown, t(30)),
            Decision::Deferred { protected: 1 }
        );
    }

    #[test]
    fn empty_target_is_nothing_to_delete() {
        assert_eq!(
            decide(PurgeMode::WhenSourceEmpty, "k", &[], &[], t(30)),
            Decision::NothingToDelete
        );
    }
}
