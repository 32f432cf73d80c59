//! Which keys of the merged walk are orphans: target keys the source no longer backs. This
//! only nominates; every orphan is then re-listed and decided exactly like an event's key.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::s3::Entry;
use crate::config::PurgeMode;
use crate::merge::Joined;
use crate::purge::decide::Policy;

/// A target key nominated as an orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub key: String,
    /// Target entries under the key (versions and delete markers).
    pub entries: usize,
    pub delete_markers: usize,
    /// The newest target entry's LastModified.
    pub newest: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Nomination {
    /// The source backs the target's key (or the target has nothing).
    NotOrphan,
    /// Old enough to decide.
    Orphan(Orphan),
    /// Younger than `min_age`: its copy may be in flight.
    TooYoung(Orphan),
}

/// Nominates one key of the walk. `young_after`: now minus `sweep.min_age`.
pub(crate) fn nominate(
    j: &Joined<Entry, Entry>,
    policy: &Policy,
    young_after: DateTime<Utc>,
) -> Nomination {
    if j.right.is_empty() {
        return Nomination::NotOrphan;
    }
    let source_complete = j.left_dropped == 0;
    let orphaned = match policy.mode {
        PurgeMode::WhenSourceEmpty => {
            let source: Vec<&Entry> = j.left.iter().collect();
            !policy.source_holds(&source, source_complete)
        }
        PurgeMode::MirrorVersions => {
            // Without the source's full set of ids nothing can be ruled out: nominate, and
            // let the decision refuse it.
            let kept: HashSet<&str> = j.left.iter().map(|e| e.version_id.as_str()).collect();
            !source_complete
                || j.right
                    .iter()
                    .any(|e| !kept.contains(e.version_id.as_str()))
        }
    };
    if !orphaned {
        return Nomination::NotOrphan;
    }
    let newest = j.right.iter().map(|e| e.last_modified).max().flatten();
    let orphan = Orphan {
        key: j.key.clone(),
        entries: j.right.len() + j.right_dropped,
        delete_markers: j.right.iter().filter(|e| e.delete_marker).count(),
        newest,
    };
    // An entry with no LastModified cannot be proved old.
    let unknown_age = j.right.iter().any(|e| e.last_modified.is_none());
    if unknown_age || newest.is_some_and(|t| t > young_after) {
        Nomination::TooYoung(orphan)
    } else {
        Nomination::Orphan(orphan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MarkerOnlySource;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 9, h, 0, 0).unwrap()
    }

    fn e(key: &str, v: &str, dm: bool, h: u32) -> Entry {
        Entry {
            key: key.into(),
            version_id: v.into(),
            delete_marker: dm,
            last_modified: Some(t(h)),
        }
    }

    fn j(src: Vec<Entry>, tgt: Vec<Entry>) -> Joined<Entry, Entry> {
        Joined {
            key: "k".into(),
            left: src,
            right: tgt,
            left_dropped: 0,
            right_dropped: 0,
        }
    }

    fn policy(mode: PurgeMode, marker: MarkerOnlySource) -> Policy {
        Policy {
            mode,
            marker_only_source: marker,
            limit: 100,
        }
    }

    #[test]
    fn orphans_in_each_mode() {
        let empty = policy(PurgeMode::WhenSourceEmpty, MarkerOnlySource::Purge);
        let keep = policy(PurgeMode::WhenSourceEmpty, MarkerOnlySource::Keep);
        let mirror = policy(PurgeMode::MirrorVersions, MarkerOnlySource::Purge);
        let young_after = t(10);
        let target = vec![e("k", "v1", false, 1), e("k", "dm", true, 2)];
        // Nothing in the source: an orphan in both modes.
        for p in [empty, mirror] {
            match nominate(&j(vec![], target.clone()), &p, young_after) {
                Nomination::Orphan(o) => {
                    assert_eq!((o.entries, o.delete_markers), (2, 1));
                    assert_eq!(o.newest, Some(t(2)));
                }
                other => panic!("{other:?}"),
            }
        }
        // The source holds data: not an orphan.
        let src = vec![e("k", "v1", false, 1)];
        assert_eq!(
            nominate(&j(src.clone(), target.clone()), &empty, young_after),
            Nomination::NotOrphan
        );
        // ...but mirroring sees the marker id the source lacks.
        assert!(matches!(
            nominate(&j(src, target.clone()), &mirror, young_after),
            Nomination::Orphan(_)
        ));
        // Only a delete marker in the source: the setting decides.
        let marker = vec![e("k", "dm0", true, 5)];
        assert!(matches!(
            nominate(&j(marker.clone(), target.clone()), &empty, young_after),
            Nomination::Orphan(_)
        ));
        assert_eq!(
            nominate(&j(marker, target.clone()), &keep, young_after),
            Nomination::NotOrphan
        );
        // Mirror with every id present: not an orphan.
        assert_eq!(
            nominate(&j(target.clone(), target.clone()), &mirror, young_after),
            Nomination::NotOrphan
        );
        // Nothing in the target: nothing to nominate.
        assert_eq!(
            nominate(&j(vec![], vec![]), &empty, young_after),
            Nomination::NotOrphan
        );
    }

    #[test]
    fn young_and_unknown_ages_are_not_decided() {
        let p = policy(PurgeMode::WhenSourceEmpty, MarkerOnlySource::Purge);
        let young = vec![e("k", "v1", false, 1), e("k", "v2", false, 11)];
        assert!(matches!(
            nominate(&j(vec![], young), &p, t(10)),
            Nomination::TooYoung(_)
        ));
        let unknown = vec![Entry {
            last_modified: None,
            ..e("k", "v1", false, 1)
        }];
        assert!(matches!(
            nominate(&j(vec![], unknown), &p, t(10)),
            Nomination::TooYoung(_)
        ));
    }

    #[test]
    fn a_capped_source_listing_holds_the_key_or_is_left_to_the_decision() {
        let empty = policy(PurgeMode::WhenSourceEmpty, MarkerOnlySource::Purge);
        let mirror = policy(PurgeMode::MirrorVersions, MarkerOnlySource::Purge);
        let mut joined = j(vec![e("k", "dm", true, 1)], vec![e("k", "v1", false, 1)]);
        joined.left_dropped = 5;
        assert_eq!(nominate(&joined, &empty, t(10)), Nomination::NotOrphan);
        assert!(matches!(
            nominate(&joined, &mirror, t(10)),
            Nomination::Orphan(_)
        ));
    }
}
