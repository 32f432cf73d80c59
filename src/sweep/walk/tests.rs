//! The target-driven walk against the full walk, over listings in memory with S3's marker
//! semantics: the same keys of the target, joined with the same source entries; fewer source
//! requests on a sparse target.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::*;
use crate::sweep::shard::KeyRange;

/// A bucket's versions in memory, listed `page` entries at a time as S3 lists them: by key,
/// after a bare key marker's key, or after a version id marker's entry.
#[derive(Clone)]
struct Memory {
    entries: Arc<Vec<Entry>>,
    page: usize,
    requests: Arc<AtomicUsize>,
}

impl Memory {
    fn new(keys: &BTreeMap<String, usize>, tag: &str, page: usize) -> Self {
        let entries = keys
            .iter()
            .flat_map(|(k, n)| {
                (0..*n).map(move |i| Entry {
                    key: k.clone(),
                    version_id: format!("{tag}{i}"),
                    delete_marker: false,
                    last_modified: None,
                })
            })
            .collect();
        Memory {
            entries: Arc::new(entries),
            page,
            requests: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Versions for Memory {
    fn list(
        &self,
        prefix: String,
        start: Option<Marker>,
    ) -> impl Future<Output = Result<VersionPage, AwsError>> + Send + 'static {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let start = start.as_ref();
        let from = match start {
            None => 0,
            Some(Marker {
                key,
                version_id: None,
            }) => self.entries.partition_point(|e| e.key <= *key),
            Some(Marker {
                key,
                version_id: Some(v),
            }) => self
                .entries
                .iter()
                .position(|e| e.key == *key && e.version_id == *v)
                .map_or_else(
                    || self.entries.partition_point(|e| e.key <= *key),
                    |i| i + 1,
                ),
        };
        let listed: Vec<Entry> = self.entries[from..]
            .iter()
            .filter(|e| e.key.starts_with(&prefix))
            .take(self.page + 1)
            .cloned()
            .collect();
        let more = listed.len() > self.page;
        let entries: Vec<Entry> = listed.into_iter().take(self.page).collect();
        let next = match (more, entries.last()) {
            (true, Some(last)) => Some(Marker {
                key: last.key.clone(),
                version_id: Some(last.version_id.clone()),
            }),
            _ => None,
        };
        std::future::ready(Ok(VersionPage { entries, next }))
    }

    fn uri(&self, prefix: &str) -> String {
        format!("memory://{prefix}")
    }
}

/// Every joined key that has target entries (the only ones that can be orphans).
async fn walk(
    source: &Memory,
    target: &Memory,
    prefix: &str,
    mode: SweepWalk,
) -> Vec<Joined<Entry, Entry>> {
    resumed(source, target, prefix, mode, None).await
}

async fn resumed(
    source: &Memory,
    target: &Memory,
    prefix: &str,
    mode: SweepWalk,
    from: Option<&Checkpoint>,
) -> Vec<Joined<Entry, Entry>> {
    shard(source, target, prefix, &KeyRange::default(), mode, from).await
}

async fn shard(
    source: &Memory,
    target: &Memory,
    prefix: &str,
    range: &KeyRange,
    mode: SweepWalk,
    from: Option<&Checkpoint>,
) -> Vec<Joined<Entry, Entry>> {
    let mut w = Walk::new(source, target, prefix, range, from, 1000, mode);
    let mut out = Vec::new();
    while let Some(batch) = w.next().await.unwrap() {
        out.extend(batch.into_iter().filter(|j| !j.right.is_empty()));
    }
    out
}

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Keys from a small alphabet, so that one is often a prefix of another (`a`, `ab`, `a/`) and
/// the skip's "just below" marker falls between neighbours.
fn key() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ab/é]{1,4}").unwrap()
}

fn world() -> impl Strategy<Value = BTreeMap<String, usize>> {
    proptest::collection::btree_map(key(), 1..4usize, 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_target_driven_walk_joins_what_the_full_walk_joins(
        src in world(),
        tgt in world(),
        shared in proptest::collection::vec(key(), 0..10),
        src_page in 1usize..6,
        tgt_page in 1usize..6,
        prefix in prop_oneof![Just(""), Just("a"), Just("b/")],
    ) {
        // Keys on both sides (the dense part), besides each side's own.
        let mut src = src;
        let mut tgt = tgt;
        for k in shared {
            src.entry(k.clone()).or_insert(2);
            tgt.entry(k).or_insert(1);
        }
        let full = run(walk(
            &Memory::new(&src, "s", src_page),
            &Memory::new(&tgt, "t", tgt_page),
            prefix,
            SweepWalk::Full,
        ));
        let (source, target) = (Memory::new(&src, "s", src_page), Memory::new(&tgt, "t", tgt_page));
        let driven = run(walk(&source, &target, prefix, SweepWalk::TargetDriven));
        prop_assert_eq!(&driven, &full);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The shards of a layout, walked one by one (either way), join together exactly what one
    /// walk of the whole prefix joins: no key lost between two shards, none joined twice, each
    /// with all of its entries on both sides.
    #[test]
    fn the_shards_of_a_prefix_join_what_one_walk_of_it_joins(
        src in world(),
        tgt in world(),
        folders in proptest::collection::vec(key(), 0..8),
        cap in 1usize..6,
        src_page in 1usize..5,
        tgt_page in 1usize..5,
        mode in prop_oneof![Just(SweepWalk::Full), Just(SweepWalk::TargetDriven)],
    ) {
        let (source, target) = (Memory::new(&src, "s", src_page), Memory::new(&tgt, "t", tgt_page));
        let whole = run(walk(&source, &target, "", SweepWalk::Full));
        let layout = crate::sweep::shard::Layout::new(
            "", "r", crate::sweep::RunKind::Report,
            crate::sweep::shard::bounds(folders, cap), chrono::Utc::now(),
        );
        let mut joined = Vec::new();
        for range in layout.ranges() {
            let part = run(shard(&source, &target, "", &range, mode, None));
            prop_assert!(part.iter().all(|j| range.contains(&j.key)), "{:?}", range);
            joined.extend(part);
        }
        prop_assert_eq!(joined, whole);
    }

    /// A walk resumed from a checkpoint (as the frontier writes them: per side the last key at
    /// or before `after` that the side holds) joins what an uninterrupted full walk joins
    /// after that key.
    #[test]
    fn a_resumed_target_driven_walk_joins_what_the_full_walk_joins_after_the_checkpoint(
        src in world(),
        tgt in world(),
        after in key(),
        src_page in 1usize..5,
        tgt_page in 1usize..5,
    ) {
        let last_at_or_before = |m: &BTreeMap<String, usize>| {
            m.range(..=after.clone()).next_back().map(|(k, _)| k.clone())
        };
        let checkpoint = Checkpoint {
            after: after.clone(),
            source_marker: last_at_or_before(&src),
            target_marker: last_at_or_before(&tgt),
        };
        let full = run(walk(
            &Memory::new(&src, "s", src_page),
            &Memory::new(&tgt, "t", tgt_page),
            "",
            SweepWalk::Full,
        ));
        let expected: Vec<_> = full.into_iter().filter(|j| j.key > after).collect();
        let driven = run(resumed(
            &Memory::new(&src, "s", src_page),
            &Memory::new(&tgt, "t", tgt_page),
            "",
            SweepWalk::TargetDriven,
            Some(&checkpoint),
        ));
        prop_assert_eq!(driven, expected);
    }
}

#[test]
fn a_sparse_target_reads_a_fraction_of_the_source_and_a_dense_one_all_of_it() {
    // Twenty projects of two hundred days, ten keys a day; the target holds one day of each.
    let mut src = BTreeMap::new();
    let mut tgt = BTreeMap::new();
    for p in 0..20 {
        for d in 0..200 {
            for f in 0..10 {
                let k = format!("topics/p{p:02}/day={d:03}/f{f}.json");
                if d == 150 {
                    tgt.insert(k.clone(), 1);
                }
                src.insert(k, 1);
            }
        }
    }
    let counted = |mode| {
        let (source, target) = (Memory::new(&src, "s", 100), Memory::new(&tgt, "t", 100));
        let joined = run(walk(&source, &target, "topics/", mode));
        (joined, source.requests(), target.requests())
    };
    let (full, full_src, full_tgt) = counted(SweepWalk::Full);
    let (driven, driven_src, driven_tgt) = counted(SweepWalk::TargetDriven);
    assert_eq!(driven, full);
    assert_eq!(full.len(), 200);
    assert!(
        full.iter().all(|j| j.left.len() == 1),
        "every target key found its source"
    );
    // 40,000 source entries are 400 pages; the target's 200 keys lie in 20 runs of 10.
    assert_eq!((full_src, full_tgt), (400, 2));
    assert_eq!(driven_tgt, 2);
    // One source page per run of target keys.
    assert_eq!(driven_src, 20, "source requests for 20 runs of target keys");

    // Dense: the target holds what the source holds; both read every source page once.
    let (source, target) = (Memory::new(&src, "s", 100), Memory::new(&src, "t", 100));
    let joined = run(walk(&source, &target, "topics/", SweepWalk::TargetDriven));
    assert_eq!(joined.len(), 40_000);
    assert_eq!((source.requests(), target.requests()), (400, 400));
}

#[test]
fn a_shard_lists_from_just_below_its_first_key() {
    assert_eq!(
        marker_below("topics/orders/").as_deref(),
        Some("topics/orders.\u{10FFFF}")
    );
    for start in ["topics/orders/", "a/\u{e000}", "a/\u{0}", "b/", "é"] {
        let m = marker_below(start).unwrap_or_default();
        assert!(m.as_str() < start, "{start:?}: {m:?}");
    }
    // Neighbours that sort between the shard's stem and its start are skipped.
    let m = marker_below("topics/orders/").unwrap();
    for k in [
        "topics/orders-dlq/x",
        "topics/orders.retry/x",
        "topics/orders.\u{fffd}",
    ] {
        assert!(k < m.as_str(), "{k}");
    }
    assert_eq!(marker_below("a").as_deref(), Some("`\u{10FFFF}"));
    assert_eq!(
        marker_below("\u{0}"),
        None,
        "nothing sorts before it: list from the start"
    );
}

#[test]
fn the_source_start_skips_forward_only() {
    let m = |k: &str, v: Option<&str>| Marker {
        key: k.into(),
        version_id: v.map(str::to_string),
    };
    let from = |k: &str| RightFrontier::From(k.into());
    let driven = SweepWalk::TargetDriven;
    // Before the first page: straight to just below the target's key.
    assert_eq!(
        source_start(None, &from("day=150/f0"), driven),
        Some(m("day=150/f", None))
    );
    // Behind the target's key: skip; at or past it: continue where the listing stopped.
    assert_eq!(
        source_start(
            Some(&m("day=001/f9", Some("v"))),
            &from("day=150/f0"),
            driven
        ),
        Some(m("day=150/f", None))
    );
    let past = m("day=150/f3", Some("v"));
    assert_eq!(
        source_start(Some(&past), &from("day=150/f0"), driven),
        Some(past.clone())
    );
    // A full walk, an unread or exhausted target: never skip.
    for f in [RightFrontier::Unknown, RightFrontier::Exhausted] {
        assert_eq!(source_start(Some(&past), &f, driven), Some(past.clone()));
    }
    assert_eq!(source_start(None, &from("z"), SweepWalk::Full), None);
    // One character: nothing sorts below it but the start.
    assert_eq!(source_start(None, &from("z"), driven), None);
    // Multi-byte: the marker drops a whole character.
    assert_eq!(just_below("데이터"), Some("데이".to_string()));
    assert_eq!(just_below(""), None);
}
