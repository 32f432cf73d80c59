//! Walking a prefix on both sides at once: ListObjectVersions pages of the source and the
//! target, fetched as the merge-join needs them, joined key by key.
//!
//! The target is read whole; the source only as far as the target needs it
//! ([`SweepWalk::TargetDriven`]): before each source page the listing skips ahead to just
//! below the target's next unjoined key, and it stops once the target is exhausted. Source
//! keys the target does not hold can make no orphan (a key with nothing in the target is never
//! one), so skipping them changes no nomination. A dense target reads the source page after
//! page as a full walk does; a sparse one jumps over the source's years that the target does
//! not keep. [`SweepWalk::Full`] reads both sides to their ends (for comparison).
//!
//! Each side reads one page ahead when it knows where its next page starts: the next request
//! is on its way while a page is joined and its orphans decided, so a listing stream runs at
//! S3's page latency rather than latency plus work.

use std::future::Future;

use tokio::task::JoinHandle;

use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Entry, Marker, VersionPage};
use crate::config::SweepWalk;
use crate::labels::ErrorKind;
use crate::merge::{Joined, MergeJoin, Need, RightFrontier};

use super::lease::Checkpoint;
use super::shard::KeyRange;

/// A version listing the walk reads: a bucket (or, in tests, a listing in memory).
/// `list` is called when the request is made (a read-ahead's too, before it is spawned).
pub(crate) trait Versions: Clone + Send + Sync + 'static {
    fn list(
        &self,
        prefix: String,
        start: Option<Marker>,
    ) -> impl Future<Output = Result<VersionPage, AwsError>> + Send + 'static;

    fn uri(&self, prefix: &str) -> String;
}

impl Versions for Bucket {
    fn list(
        &self,
        prefix: String,
        start: Option<Marker>,
    ) -> impl Future<Output = Result<VersionPage, AwsError>> + Send + 'static {
        let bucket = self.clone();
        async move { bucket.list_versions(&prefix, start.as_ref()).await }
    }

    fn uri(&self, prefix: &str) -> String {
        Bucket::uri(self, prefix)
    }
}

/// Where the source listing should read next. `next`: where it would continue (`None` before
/// its first page: the start, or a resumed walk's marker is given instead). Target-driven, it
/// skips to just below the target's next unjoined key when that lies further on; it never
/// moves back.
pub(crate) fn source_start(
    next: Option<&Marker>,
    frontier: &RightFrontier,
    walk: SweepWalk,
) -> Option<Marker> {
    let skip_to = match (walk, frontier) {
        (SweepWalk::TargetDriven, RightFrontier::From(k)) => just_below(k),
        (SweepWalk::TargetDriven, RightFrontier::After(k)) => Some(k.clone()),
        _ => None,
    };
    match (next, skip_to) {
        (Some(n), Some(s)) if s > n.key => Some(Marker {
            key: s,
            version_id: None,
        }),
        (None, Some(s)) => Some(Marker {
            key: s,
            version_id: None,
        }),
        (n, _) => n.cloned(),
    }
}

/// A key marker S3 lists `key` after: `key` less its last character, which sorts before it in
/// UTF-8 byte order (S3's). `None` for a one-character key: list from the start.
fn just_below(key: &str) -> Option<String> {
    let mut chars = key.chars();
    chars.next_back()?;
    let below = chars.as_str();
    (!below.is_empty()).then(|| below.to_string())
}

/// A key marker from which S3 lists `start` and what follows, and as good as nothing before
/// it: `start` with its last character replaced by the one before and the greatest character
/// after (`topics/orders/` becomes `topics/orders.\u{10FFFF}`). Dropping the last character
/// instead would first list `topics/orders-dlq/` and `topics/orders.retry/`, which sort in
/// between and belong to the shard before: all of another topic read, and clipped. `None`
/// when nothing can sort before it: list from the start.
fn marker_below(start: &str) -> Option<String> {
    let mut chars = start.chars();
    let last = chars.next_back()?;
    let mut out = chars.as_str().to_string();
    match char::from_u32(u32::from(last).wrapping_sub(1)) {
        Some(before) if last != '\0' => {
            out.push(before);
            out.push(char::MAX);
        }
        _ => {}
    }
    (!out.is_empty()).then_some(out)
}

/// A page requested ahead, and where it starts.
type Ahead = (Option<Marker>, JoinHandle<Result<VersionPage, AwsError>>);

/// One listing's position.
struct Cursor {
    next: Option<Marker>,
    started: bool,
    done: bool,
    /// A page already requested, and where it starts.
    ahead: Option<Ahead>,
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if let Some((_, h)) = &self.ahead {
            h.abort();
        }
    }
}

impl Cursor {
    fn new(after: Option<String>) -> Self {
        Cursor {
            // S3 starts after a bare key marker (scripts/moto_server.py makes the emulator
            // do the same).
            next: after.map(|key| Marker {
                key,
                version_id: None,
            }),
            started: false,
            done: false,
            ahead: None,
        }
    }

    fn exhausted(&self) -> bool {
        self.done || (self.started && self.next.is_none())
    }

    /// Keeps what `range` holds of a page; past its end, the listing is done.
    fn clip(&mut self, mut entries: Vec<Entry>, range: &KeyRange) -> Vec<Entry> {
        if entries.first().is_some_and(|e| range.before(&e.key)) {
            entries.retain(|e| !range.before(&e.key));
        }
        if let Some(end) = entries.iter().position(|e| range.past(&e.key)) {
            entries.truncate(end);
            self.done = true;
            if let Some((_, h)) = self.ahead.take() {
                h.abort();
            }
        }
        entries
    }

    /// The page starting at `start`: the one read ahead if it starts there, else a new request
    /// (a read-ahead that starts elsewhere is dropped).
    async fn fetch<V: Versions>(
        &mut self,
        versions: &V,
        prefix: &str,
        start: Option<Marker>,
    ) -> Result<Vec<Entry>, AwsError> {
        let p = match self.ahead.take() {
            Some((from, h)) if from == start => h.await.map_err(|e| {
                AwsError::in_response(
                    crate::labels::S3Op::ListObjectVersions.into(),
                    versions.uri(prefix),
                    ErrorKind::Other,
                    None,
                    format!("the read-ahead listing stopped: {e}"),
                )
            })??,
            stale => {
                if let Some((_, h)) = stale {
                    h.abort();
                }
                versions.list(prefix.to_string(), start).await?
            }
        };
        self.started = true;
        self.done = p.next.is_none();
        self.next = p.next;
        Ok(p.entries)
    }

    /// Requests the page at `start` now, for the next [`Cursor::fetch`].
    fn read_ahead<V: Versions>(&mut self, versions: &V, prefix: &str, start: Option<Marker>) {
        if self.exhausted() || self.ahead.is_some() {
            return;
        }
        let h = tokio::spawn(versions.list(prefix.to_string(), start.clone()));
        self.ahead = Some((start, h));
    }
}

/// The merged walk of one shard of a prefix, resumable from a checkpoint.
pub(crate) struct Walk<'a, V: Versions = Bucket> {
    source: &'a V,
    target: &'a V,
    prefix: String,
    range: KeyRange,
    walk: SweepWalk,
    join: MergeJoin<Entry, Entry>,
    src: Cursor,
    tgt: Cursor,
    /// Keys up to this one were done before a restart.
    after: Option<String>,
}

impl<'a, V: Versions> Walk<'a, V> {
    /// The keys of `range` under `prefix`; `cap`: entries kept per key and side (more are
    /// counted, not kept).
    pub fn new(
        source: &'a V,
        target: &'a V,
        prefix: &str,
        range: &KeyRange,
        resume: Option<&Checkpoint>,
        cap: usize,
        walk: SweepWalk,
    ) -> Self {
        // A shard's listings start just below its first key (what lies between is clipped);
        // a resumed one's where its checkpoint says.
        let from = range.start.as_deref().and_then(marker_below);
        let marker = |m: Option<&String>| m.or(from.as_ref()).cloned();
        Walk {
            source,
            target,
            prefix: prefix.to_string(),
            range: range.clone(),
            walk,
            join: MergeJoin::new(cap),
            src: Cursor::new(marker(resume.and_then(|c| c.source_marker.as_ref()))),
            tgt: Cursor::new(marker(resume.and_then(|c| c.target_marker.as_ref()))),
            after: resume.map(|c| c.after.clone()),
        }
    }

    /// The next keys complete on both sides, in order; `None` at the end of the prefix.
    pub async fn next(&mut self) -> Result<Option<Vec<Joined<Entry, Entry>>>, AwsError> {
        loop {
            self.stop_source_past_target();
            let (fetch_src, fetch_tgt) = match self.join.need() {
                Need::Nothing => {
                    let drained = self.join.drain();
                    let rest = self.skip_done(drained);
                    return Ok((!rest.is_empty()).then_some(rest));
                }
                Need::Left => (true, false),
                Need::Right => (false, true),
                Need::Both => (true, true),
            };
            let src_start = self.source_start();
            let tgt_start = self.tgt.next.clone();
            // Target-driven, the source waits for the target's first keys: read blind, its
            // first page would be the bucket's oldest partitions.
            let blind = self.walk == SweepWalk::TargetDriven
                && self.join.right_frontier() == RightFrontier::Unknown
                && !self.tgt.exhausted();
            let (fetch_src, fetch_tgt) = (
                fetch_src && !blind && !self.src.exhausted(),
                (fetch_tgt || blind) && !self.tgt.exhausted(),
            );
            let (src, tgt, prefix) = (&mut self.src, &mut self.tgt, self.prefix.as_str());
            let (source, target) = (self.source, self.target);
            let (s, t) = tokio::join!(
                async {
                    match fetch_src {
                        true => src.fetch(source, prefix, src_start).await.map(Some),
                        false => Ok(None),
                    }
                },
                async {
                    match fetch_tgt {
                        true => tgt.fetch(target, prefix, tgt_start).await.map(Some),
                        false => Ok(None),
                    }
                },
            );
            if let Some(entries) = s? {
                let entries = self.src.clip(entries, &self.range);
                self.join.push_left(entries, self.src.done);
            }
            if let Some(entries) = t? {
                let entries = self.tgt.clip(entries, &self.range);
                self.join.push_right(entries, self.tgt.done);
            }
            let drained = self.join.drain();
            // After the drain: the target's next unjoined key is where the source goes next.
            self.read_ahead();
            let ready = self.skip_done(drained);
            if !ready.is_empty() {
                return Ok(Some(ready));
            }
        }
    }

    fn source_start(&self) -> Option<Marker> {
        source_start(
            self.src.next.as_ref(),
            &self.join.right_frontier(),
            self.walk,
        )
    }

    /// Once the target is read and joined to its end, no source key can make an orphan.
    fn stop_source_past_target(&mut self) {
        let exhausted = self.join.right_frontier() == RightFrontier::Exhausted;
        if self.walk == SweepWalk::TargetDriven && exhausted && !self.src.done {
            self.src.done = true;
            self.join.push_left(Vec::new(), true);
        }
    }

    /// The target's next page is always the one after; the source's only once the target
    /// shows where it must start (target-driven) or always (full).
    fn read_ahead(&mut self) {
        let next = self.tgt.next.clone();
        self.tgt.read_ahead(self.target, &self.prefix, next);
        let known = match self.walk {
            SweepWalk::Full => true,
            SweepWalk::TargetDriven => {
                matches!(self.join.right_frontier(), RightFrontier::From(_))
            }
        };
        if known {
            let start = self.source_start();
            self.src.read_ahead(self.source, &self.prefix, start);
        }
    }

    fn skip_done(&self, batch: Vec<Joined<Entry, Entry>>) -> Vec<Joined<Entry, Entry>> {
        match &self.after {
            Some(after) => batch.into_iter().filter(|j| j.key > *after).collect(),
            None => batch,
        }
    }
}

#[cfg(test)]
mod tests;
