//! Merge-join of two key-ordered listings that arrive page by page (the source's and the
//! target's), so that both sides of a key are looked at together while memory stays bounded
//! by about a page per side.
//!
//! A key is complete on one side once that side is exhausted or has shown a greater key: keys
//! come in byte order (S3's order, and `str`'s), and one key's entries may straddle pages, so
//! the last key seen may still continue on the next page. [`MergeJoin::drain`] hands out every
//! key complete on both sides; [`MergeJoin::need`] says which side to fetch next.

use std::collections::VecDeque;

/// Something listed under a key.
pub(crate) trait Keyed {
    fn key(&self) -> &str;
}

/// One key with what each side listed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Joined<L, R> {
    pub key: String,
    pub left: Vec<L>,
    pub right: Vec<R>,
    /// Items dropped for this key beyond `cap` on each side (the key is still reported).
    pub left_dropped: usize,
    pub right_dropped: usize,
}

/// Which side must be fetched for [`MergeJoin::drain`] to make progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Left,
    Right,
    Both,
    /// Both sides are exhausted.
    Nothing,
}

/// Where the right side stands, for a left listing that may skip what cannot join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RightFrontier {
    /// Nothing of the right side read yet: any left key may join.
    Unknown,
    /// The right side's next unjoined key: left keys from this one on may join.
    From(String),
    /// Nothing right is buffered; its last key was this: left keys after it may join.
    After(String),
    /// The right side is read and joined to its end: no left key joins anything more.
    Exhausted,
}

#[derive(Debug)]
struct Side<T> {
    buffered: VecDeque<T>,
    /// The greatest key seen so far: keys below it are complete on this side.
    last: Option<String>,
    done: bool,
}

impl<T: Keyed> Side<T> {
    fn new() -> Self {
        Side {
            buffered: VecDeque::new(),
            last: None,
            done: false,
        }
    }

    fn push(&mut self, items: Vec<T>, done: bool) {
        if let Some(last) = items.last() {
            self.last = Some(last.key().to_string());
        }
        self.buffered.extend(items);
        self.done |= done;
    }

    /// Whether every item of `key` on this side has been seen.
    fn complete(&self, key: &str) -> bool {
        self.done || self.last.as_deref().is_some_and(|l| l > key)
    }

    fn next_key(&self) -> Option<&str> {
        self.buffered.front().map(Keyed::key)
    }

    /// Takes the leading items of `key`, keeping at most `cap`.
    fn take(&mut self, key: &str, cap: usize) -> (Vec<T>, usize) {
        let mut kept = Vec::new();
        let mut dropped = 0;
        while self.next_key() == Some(key) {
            if let Some(item) = self.buffered.pop_front() {
                if kept.len() < cap {
                    kept.push(item);
                } else {
                    dropped += 1;
                }
            }
        }
        (kept, dropped)
    }
}

/// The join state of two listings; see the module docs.
#[derive(Debug)]
pub(crate) struct MergeJoin<L, R> {
    left: Side<L>,
    right: Side<R>,
    cap: usize,
}

impl<L: Keyed, R: Keyed> MergeJoin<L, R> {
    /// `cap`: items kept per key and side (more are counted, not kept), so one key with a
    /// huge number of versions cannot hold the whole of it in memory.
    pub fn new(cap: usize) -> Self {
        MergeJoin {
            left: Side::new(),
            right: Side::new(),
            cap,
        }
    }

    /// Adds the next page of the left listing; `done` when it was the last.
    pub(crate) fn push_left(&mut self, items: Vec<L>, done: bool) {
        self.left.push(items, done);
    }

    /// Adds the next page of the right listing; `done` when it was the last.
    pub(crate) fn push_right(&mut self, items: Vec<R>, done: bool) {
        self.right.push(items, done);
    }

    /// Every key now complete on both sides, in key order.
    pub(crate) fn drain(&mut self) -> Vec<Joined<L, R>> {
        let mut out = Vec::new();
        loop {
            let key = match (self.left.next_key(), self.right.next_key()) {
                (Some(l), Some(r)) => l.min(r).to_string(),
                (Some(l), None) => l.to_string(),
                (None, Some(r)) => r.to_string(),
                (None, None) => break,
            };
            if !(self.left.complete(&key) && self.right.complete(&key)) {
                break;
            }
            let (left, left_dropped) = self.left.take(&key, self.cap);
            let (right, right_dropped) = self.right.take(&key, self.cap);
            out.push(Joined {
                key,
                left,
                right,
                left_dropped,
                right_dropped,
            });
        }
        out
    }

    /// How far the left side still has to be read for the right side's sake. Left keys before
    /// the frontier can join nothing: every right key before it is joined already.
    pub(crate) fn right_frontier(&self) -> RightFrontier {
        if let Some(k) = self.right.next_key() {
            return RightFrontier::From(k.to_string());
        }
        if self.right.done {
            return RightFrontier::Exhausted;
        }
        match &self.right.last {
            Some(last) => RightFrontier::After(last.clone()),
            None => RightFrontier::Unknown,
        }
    }

    /// Which side to fetch next: the one whose frontier is behind (both when level).
    pub fn need(&self) -> Need {
        match (self.left.done, self.right.done) {
            (true, true) => Need::Nothing,
            (true, false) => Need::Right,
            (false, true) => Need::Left,
            (false, false) => match (&self.left.last, &self.right.last) {
                (Some(l), Some(r)) if l < r => Need::Left,
                (Some(l), Some(r)) if r < l => Need::Right,
                _ => Need::Both,
            },
        }
    }

    /// Items waiting in memory, both sides together.
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.left.buffered.len() + self.right.buffered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Item(String, u32);

    impl Keyed for Item {
        fn key(&self) -> &str {
            &self.0
        }
    }

    /// A sorted listing: keys in byte order, each key's items together.
    fn listing(keys: &BTreeMap<String, u32>) -> Vec<Item> {
        keys.iter()
            .flat_map(|(k, n)| (0..*n).map(move |i| Item(k.clone(), i)))
            .collect()
    }

    /// What the join must produce: every key of either side with both sides' items.
    fn reference(l: &[Item], r: &[Item], cap: usize) -> Vec<Joined<Item, Item>> {
        let mut keys: BTreeMap<String, (Vec<Item>, Vec<Item>)> = BTreeMap::new();
        for i in l {
            keys.entry(i.0.clone()).or_default().0.push(i.clone());
        }
        for i in r {
            keys.entry(i.0.clone()).or_default().1.push(i.clone());
        }
        keys.into_iter()
            .map(|(key, (mut left, mut right))| {
                let ld = left.len().saturating_sub(cap);
                let rd = right.len().saturating_sub(cap);
                left.truncate(cap);
                right.truncate(cap);
                Joined {
                    key,
                    left,
                    right,
                    left_dropped: ld,
                    right_dropped: rd,
                }
            })
            .collect()
    }

    /// Runs the join with pages of the given sizes, fetching what `need` asks for.
    fn run(
        l: &[Item],
        r: &[Item],
        lp: usize,
        rp: usize,
        cap: usize,
    ) -> (Vec<Joined<Item, Item>>, usize) {
        let mut j = MergeJoin::new(cap);
        let (mut li, mut ri) = (0, 0);
        let mut out = Vec::new();
        let mut peak = 0;
        loop {
            let (fl, fr) = match j.need() {
                Need::Nothing => break,
                Need::Left => (true, false),
                Need::Right => (false, true),
                Need::Both => (true, true),
            };
            if fl {
                let end = (li + lp).min(l.len());
                j.push_left(l[li..end].to_vec(), end == l.len());
                li = end;
            }
            if fr {
                let end = (ri + rp).min(r.len());
                j.push_right(r[ri..end].to_vec(), end == r.len());
                ri = end;
            }
            peak = peak.max(j.buffered());
            out.extend(j.drain());
        }
        out.extend(j.drain());
        (out, peak)
    }

    fn keys_strategy() -> impl Strategy<Value = BTreeMap<String, u32>> {
        // Short keys over a small alphabet with multi-byte characters, so that shared prefixes,
        // prefixes of each other (`a` < `a/x` < `a.bak`... in byte order) and UTF-8 order
        // beyond ASCII all occur.
        let key = proptest::collection::vec(
            prop::sample::select(vec!["a", "b", "/", ".", "é", "e\u{301}", "한", "z", "~"]),
            1..5,
        )
        .prop_map(|parts| parts.concat());
        proptest::collection::btree_map(key, 1u32..4, 0..40)
    }

    proptest! {
        #[test]
        fn joins_every_key_exactly_once_whatever_the_pages(
            left in keys_strategy(),
            right in keys_strategy(),
            lp in 1usize..7,
            rp in 1usize..7,
            cap in 1usize..4,
        ) {
            let (l, r) = (listing(&left), listing(&right));
            let (got, peak) = run(&l, &r, lp, rp, cap);
            prop_assert_eq!(got, reference(&l, &r, cap));
            // Memory: about a page per side, plus the one key that may straddle pages.
            prop_assert!(peak <= 2 * (lp + rp) + 8, "peak {} pages {} {}", peak, lp, rp);
        }
    }

    #[test]
    fn one_side_empty() {
        let l = listing(&[("a".to_string(), 2), ("b".to_string(), 1)].into());
        let (got, _) = run(&l, &[], 1, 1, 10);
        assert_eq!(got, reference(&l, &[], 10));
        let (got, _) = run(&[], &l, 3, 1, 10);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|j| j.left.is_empty() && j.right.len() <= 2));
        let (got, _) = run(&[], &[], 1, 1, 10);
        assert!(got.is_empty());
    }

    #[test]
    fn a_key_straddling_pages_waits_for_its_last_item() {
        let mut j: MergeJoin<Item, Item> = MergeJoin::new(10);
        j.push_left(vec![Item("k".into(), 0), Item("k".into(), 1)], false);
        j.push_right(vec![Item("k".into(), 0)], true);
        assert!(
            j.drain().is_empty(),
            "k may continue on the left's next page"
        );
        assert_eq!(j.need(), Need::Left);
        j.push_left(vec![Item("k".into(), 2), Item("k.bak".into(), 0)], true);
        let out = j.drain();
        assert_eq!(out[0].key, "k");
        assert_eq!(out[0].left.len(), 3);
        assert_eq!(out[1].key, "k.bak");
        assert_eq!(j.need(), Need::Nothing);
    }
}
