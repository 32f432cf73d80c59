//! Coalesced listings for bursts, without I/O: which keys share one range listing
//! ([`groups`]), and each key's entries from that listing's pages ([`RangeCollector`]).
//!
//! A lifecycle rule expiring a day's partitions sends one event per object, clustered under a
//! few prefixes. Listing each key on its own costs a request per key and side; one listing of
//! the range the keys span answers them all. The range listing asks for `Prefix` = the keys'
//! longest common prefix and stops once it is past the largest key. It never sends a bare
//! `KeyMarker`: S3 starts after it, but the emulator (moto) also drops the first version it
//! would return, and a dropped source version could make the source look empty.
//!
//! Each key is then decided exactly as if listed on its own: only entries whose key is exactly
//! it, the same `max_versions_per_key` cut ([`RangeCollector`] yields the same
//! [`KeyListing`] as [`ExactKey`](super::exact_key::ExactKey)). A range turns out sparse when it
//! holds many more entries than the keys asked for; the collector gives up once reading on is
//! no cheaper than listing the keys left one by one, and those keys are listed one by one.

use std::collections::BTreeMap;

use super::decide::KeyListing;
use crate::aws::s3::{Marker, VersionPage};

/// Keys that share one range listing (at least 2, sorted, distinct).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The listing's `Prefix`: the keys' longest common prefix.
    pub prefix: String,
    pub keys: Vec<String>,
}

/// The directory of a key: up to and including its last `/` (empty at the top).
fn parent(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

/// The longest common prefix of two keys, on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            return &a[..i];
        }
        end = i + x.len_utf8();
    }
    &a[..end]
}

/// Splits `keys` into groups listed together (keys of one directory, at least `min_group` of
/// them) and keys listed on their own. Duplicates are listed once.
pub fn groups(mut keys: Vec<String>, min_group: usize) -> (Vec<Group>, Vec<String>) {
    keys.sort();
    keys.dedup();
    let mut groups = Vec::new();
    let mut singles = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let mut flush = |run: &mut Vec<String>| {
        if run.len() >= min_group.max(2) {
            let first = run.first().map(String::as_str).unwrap_or_default();
            let last = run.last().map(String::as_str).unwrap_or_default();
            groups.push(Group {
                prefix: common_prefix(first, last).to_string(),
                keys: std::mem::take(run),
            });
        } else {
            singles.append(run);
        }
    };
    for k in keys {
        if run.first().is_some_and(|f| parent(f) != parent(&k)) {
            flush(&mut run);
        }
        run.push(k);
    }
    flush(&mut run);
    (groups, singles)
}

/// What to do after a page of a range listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Ask for the next page from here.
    Next(Marker),
    /// Every key is answered.
    Done,
    /// Reading on costs as much as listing the keys not yet answered one by one: list those
    /// on their own ([`RangeCollector::finish`] says which).
    GiveUp,
}

/// Collects each wanted key's entries from the pages of one range listing.
#[derive(Debug)]
pub(crate) struct RangeCollector {
    /// Wanted keys, their entries so far.
    wanted: BTreeMap<String, KeyListing>,
    limit: usize,
    pages: usize,
    /// Every key below this one is fully seen.
    seen_below: Option<String>,
    done: bool,
}

impl RangeCollector {
    /// `keys`: the group's keys; `limit`: `max_versions_per_key`.
    pub fn new(keys: &[String], limit: usize) -> Self {
        RangeCollector {
            wanted: keys
                .iter()
                .map(|k| (k.clone(), KeyListing::complete(Vec::new())))
                .collect(),
            limit,
            pages: 0,
            seen_below: None,
            done: false,
        }
    }

    /// Keys not fully seen yet.
    fn open(&self) -> usize {
        match &self.seen_below {
            None => self.wanted.len(),
            Some(b) => self
                .wanted
                .range::<str, _>((
                    std::ops::Bound::Included(b.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .count(),
        }
    }

    pub(crate) fn feed(&mut self, page: VersionPage) -> Step {
        self.pages += 1;
        for e in page.entries {
            if let Some(l) = self.wanted.get_mut(&e.key) {
                if l.entries.len() == self.limit {
                    l.complete = false;
                } else {
                    l.entries.push(e);
                }
            }
        }
        let Some(next) = page.next else {
            self.done = true;
            return Step::Done;
        };
        // Keys come in byte order: below the next page's first key, everything was seen.
        self.seen_below = Some(next.key.clone());
        let largest = self.wanted.keys().next_back();
        if largest.is_none_or(|l| *l < next.key) {
            self.done = true;
            return Step::Done;
        }
        if self.pages >= self.open() {
            return Step::GiveUp;
        }
        Step::Next(next)
    }

    /// The keys answered, and those to list on their own (after [`Step::GiveUp`]).
    pub fn finish(self) -> (BTreeMap<String, KeyListing>, Vec<String>) {
        if self.done {
            return (self.wanted, Vec::new());
        }
        let below = self.seen_below.unwrap_or_default();
        let mut answered = self.wanted;
        let rest = answered.split_off(below.as_str());
        (answered, rest.into_keys().collect())
    }
}

#[cfg(test)]
mod tests;
