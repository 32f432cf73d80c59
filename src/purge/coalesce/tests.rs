use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::aws::s3::Entry;
use crate::config::{MarkerOnlySource, PurgeMode};
use crate::purge::decide::{Decision, Guards, Policy, decide};
use crate::purge::exact_key::ExactKey;
use std::collections::BTreeSet;

fn t(sec: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + sec, 0).unwrap()
}

fn entry(key: &str, v: &str, marker: bool, sec: i64) -> Entry {
    Entry {
        key: key.into(),
        version_id: v.into(),
        delete_marker: marker,
        last_modified: Some(t(sec)),
    }
}

/// A bucket as S3 lists it: keys in byte order, each key's entries in a fixed order.
#[derive(Debug, Clone, Default)]
struct Bucket(Vec<Entry>);

impl Bucket {
    fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Bucket(entries)
    }

    /// ListObjectVersions: entries under `prefix` after `start` (after that version of its
    /// key, or after the whole key without a version), `max` at most.
    fn list(&self, prefix: &str, start: Option<&Marker>, max: usize) -> VersionPage {
        let mut it = self
            .0
            .iter()
            .filter(|e| e.key.starts_with(prefix))
            .peekable();
        if let Some(m) = start {
            match &m.version_id {
                Some(v) => {
                    for e in it.by_ref() {
                        if e.key == m.key && &e.version_id == v {
                            break;
                        }
                    }
                }
                None => while it.next_if(|e| e.key <= m.key).is_some() {},
            }
        }
        let entries: Vec<Entry> = it.by_ref().take(max).cloned().collect();
        let next = match (it.peek(), entries.last()) {
            (Some(_), Some(last)) => Some(Marker {
                key: last.key.clone(),
                version_id: Some(last.version_id.clone()),
            }),
            _ => None,
        };
        VersionPage { entries, next }
    }

    fn exact(&self, key: &str, limit: usize, page: usize) -> (KeyListing, usize) {
        let mut c = ExactKey::new(key, limit);
        let mut start = None;
        let mut requests = 0;
        loop {
            requests += 1;
            match c.feed(self.list(key, start.as_ref(), page)) {
                Some(n) => start = Some(n),
                None => return (c.finish(), requests),
            }
        }
    }

    /// Every key of `keys` as the coalesced path lists it: groups by range, the rest (and what
    /// a range gave up on) one by one. Also the number of requests.
    fn coalesced(
        &self,
        keys: &[String],
        limit: usize,
        page: usize,
    ) -> (BTreeMap<String, KeyListing>, usize) {
        let (groups, singles) = groups(keys.to_vec(), 2);
        let mut out = BTreeMap::new();
        let mut requests = 0;
        let mut one_by_one = singles;
        for g in groups {
            let mut c = RangeCollector::new(&g.keys, limit);
            let mut start = None;
            loop {
                requests += 1;
                match c.feed(self.list(&g.prefix, start.as_ref(), page)) {
                    Step::Next(m) => start = Some(m),
                    Step::Done | Step::GiveUp => break,
                }
            }
            let (answered, rest) = c.finish();
            out.extend(answered);
            one_by_one.extend(rest);
        }
        for k in one_by_one {
            let (l, n) = self.exact(&k, limit, page);
            requests += n;
            out.insert(k, l);
        }
        (out, requests)
    }
}

#[test]
fn groups_follow_directories_and_keep_singles_apart() {
    let keys: Vec<String> = [
        "p/day=14/b.json",
        "p/day=14/a.json",
        "p/day=14/a.json",
        "p/day=15/a.json",
        "q/x",
        "p/day=14/ab.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (g, singles) = groups(keys, 2);
    assert_eq!(
        g,
        vec![Group {
            prefix: "p/day=14/".into(),
            keys: vec![
                "p/day=14/a.json".into(),
                "p/day=14/ab.json".into(),
                "p/day=14/b.json".into()
            ],
        }]
    );
    assert_eq!(singles, vec!["p/day=15/a.json", "q/x"]);
    let (g, _) = groups(
        vec!["d/part-0012.json".into(), "d/part-0019.json".into()],
        2,
    );
    assert_eq!(g[0].prefix, "d/part-001", "the longest common prefix");
    // NFC and NFD spell different keys; the prefix stops before them.
    let (g, _) = groups(vec!["d/\u{e9}".into(), "d/e\u{301}".into()], 2);
    assert_eq!(g[0].prefix, "d/");
}

#[test]
fn a_sparse_range_is_given_up_after_as_many_pages_as_keys_left() {
    // 3 keys spread over a directory of 5,000: their common prefix is the directory.
    let mut entries: Vec<Entry> = (0..5000)
        .map(|i| entry(&format!("d/{i:05}"), "v", false, 0))
        .collect();
    entries.push(entry("d/zz3", "v", false, 0));
    let b = Bucket::new(entries);
    let keys: Vec<String> = ["d/00007", "d/04990", "d/zz3"].map(String::from).to_vec();
    let (got, requests) = b.coalesced(&keys, 100, 1000);
    // Page 1 answers d/00007; after page 2, two keys are left: listing them costs 2.
    assert_eq!(requests, 2 + 2);
    for k in &keys {
        assert_eq!(got[k], b.exact(k, 100, 1000).0);
    }
    // Keys close together share a long prefix, and one page.
    let keys: Vec<String> = ["d/04990", "d/04993"].map(String::from).to_vec();
    let (got, requests) = b.coalesced(&keys, 100, 1000);
    assert_eq!((requests, got.len()), (1, 2));
}

#[test]
fn a_dense_burst_is_answered_by_a_few_pages() {
    // 300 keys with 2 versions and a delete marker: 900 entries, one page for all of them.
    let mut entries = Vec::new();
    for i in 0..300 {
        let k = format!("t/day=14/part-{i:05}.json");
        entries.push(entry(&k, "v2", true, 3));
        entries.push(entry(&k, "v1", false, 2));
        entries.push(entry(&k, "v0", false, 1));
    }
    let b = Bucket::new(entries);
    let keys: Vec<String> = (0..300)
        .map(|i| format!("t/day=14/part-{i:05}.json"))
        .collect();
    let (got, requests) = b.coalesced(&keys, 10_000, 1000);
    assert_eq!(requests, 1, "one request instead of 300");
    assert_eq!(got.len(), 300);
    assert!(got.values().all(|l| l.complete && l.entries.len() == 3));
}

#[test]
fn a_key_straddling_the_thousand_entry_page_boundary() {
    let mut entries: Vec<Entry> = (0..1500)
        .map(|i| entry("d/big", &format!("v{i:04}"), false, 0))
        .collect();
    entries.push(entry("d/big.bak", "x", false, 0));
    entries.push(entry("d/small", "s", false, 0));
    let b = Bucket::new(entries);
    let keys: Vec<String> = ["d/big", "d/small"].map(String::from).to_vec();
    let (got, _) = b.coalesced(&keys, 10_000, 1000);
    assert_eq!(got["d/big"].entries.len(), 1500);
    assert!(got["d/big"].entries.iter().all(|e| e.key == "d/big"));
    assert_eq!(got["d/small"].entries.len(), 1);
    // The limit cuts it exactly as the per-key listing does.
    let (got, _) = b.coalesced(&keys, 1200, 1000);
    assert_eq!(got["d/big"], b.exact("d/big", 1200, 1000).0);
    assert!(!got["d/big"].complete);
}

// ---- The property: coalescing never decides differently ----

/// Keys that look alike: suffixes, longer keys, a directory of the same name, NFC and NFD,
/// long shared prefixes.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("p/a".to_string()),
        Just("p/a.txt".to_string()),
        Just("p/a.txt.bak".to_string()),
        Just("p/a/x".to_string()),
        Just("p/\u{e9}.json".to_string()),
        Just("p/e\u{301}.json".to_string()),
        Just("p/a b+c%2B.json".to_string()),
        "p/day=1[45]/part-0000[0-9]\\.json",
        "p/long/shared/prefix/[a-c]{1,3}",
        "q/[ab]{1,2}",
    ]
}

#[derive(Debug, Clone)]
struct World {
    source: Vec<Entry>,
    target: Vec<Entry>,
    /// The keys events arrived for.
    keys: Vec<String>,
}

fn entries(keys: Vec<(String, Vec<(bool, i64)>)>, side: &str) -> Vec<Entry> {
    keys.into_iter()
        .flat_map(|(k, vs)| {
            vs.into_iter()
                .enumerate()
                .map(move |(i, (marker, sec))| entry(&k, &format!("{side}{i}"), marker, sec))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn world() -> impl Strategy<Value = World> {
    let versions = || proptest::collection::vec((any::<bool>(), 0i64..12), 0..5);
    (
        proptest::collection::vec((key(), versions()), 0..14),
        proptest::collection::vec((key(), versions()), 0..14),
        proptest::collection::vec(key(), 1..12),
    )
        .prop_map(|(s, t, keys)| World {
            source: entries(dedup(s), "s"),
            target: entries(dedup(t), "t"),
            keys,
        })
}

fn dedup(mut v: Vec<(String, Vec<(bool, i64)>)>) -> Vec<(String, Vec<(bool, i64)>)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![
            Just(PurgeMode::WhenSourceEmpty),
            Just(PurgeMode::MirrorVersions)
        ],
        prop_oneof![Just(MarkerOnlySource::Keep), Just(MarkerOnlySource::Purge)],
        1usize..7,
    )
        .prop_map(|(mode, marker_only_source, limit)| Policy {
            mode,
            marker_only_source,
            limit,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the world, the page size and the keys that arrive together, every key's
    /// decision from the coalesced listings is the per-key decision: the same entries
    /// deleted, the same refusals, the same entries protected by the race guard. Keys written
    /// again in the source after the target (sec 9 to 11, past the cutoff) are in the worlds.
    #[test]
    fn coalesced_listings_decide_exactly_as_per_key_listings(
        w in world(),
        p in policy(),
        page in prop_oneof![1usize..8, Just(1000usize)],
        cutoff in 4i64..12,
    ) {
        let (source, target) = (Bucket::new(w.source), Bucket::new(w.target));
        let (src, _) = source.coalesced(&w.keys, p.limit, page);
        let (tgt, _) = target.coalesced(&w.keys, p.limit, page);
        for k in &w.keys {
            let (s1, _) = source.exact(k, p.limit, page);
            let (t1, _) = target.exact(k, p.limit, page);
            prop_assert_eq!(&src[k], &s1, "source listing of {}", k);
            prop_assert_eq!(&tgt[k], &t1, "target listing of {}", k);
            let guards = Guards { cutoff: t(cutoff), young_after: None };
            let none = BTreeSet::new();
            let per_key = decide(&p, k, &s1, &t1, &none, guards);
            let coalesced = decide(&p, k, &src[k], &tgt[k], &none, guards);
            prop_assert_eq!(&coalesced, &per_key, "decision for {}", k);
            if let Decision::Delete { versions, markers, .. } = &coalesced {
                prop_assert!(
                    versions.iter().chain(markers).all(|e| &e.key == k),
                    "only {} itself", k
                );
            }
        }
    }
}
