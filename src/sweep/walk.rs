//! Walking a prefix on both sides at once: ListObjectVersions pages of the source and the
//! target, fetched as the merge-join needs them, joined key by key. Each side reads one page
//! ahead: the next request is on its way while a page is joined and its orphans decided, so a
//! listing stream runs at S3's page latency rather than latency plus work.

use tokio::task::JoinHandle;

use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Entry, Marker, VersionPage};
use crate::labels::{ErrorKind, Service};
use crate::merge::{Joined, MergeJoin, Need};

use super::lease::Checkpoint;

/// One listing's position.
struct Cursor {
    next: Option<Marker>,
    started: bool,
    done: bool,
    /// The page after `next`'s, already requested.
    ahead: Option<JoinHandle<Result<VersionPage, AwsError>>>,
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if let Some(h) = &self.ahead {
            h.abort();
        }
    }
}

impl Cursor {
    fn new(after: Option<&String>) -> Self {
        Cursor {
            // S3 starts after a bare key marker. (moto includes the marker key and drops the
            // first version after it; keys up to the checkpoint are skipped anyway.)
            next: after.map(|k| Marker {
                key: k.clone(),
                version_id: None,
            }),
            started: false,
            done: false,
            ahead: None,
        }
    }
}

/// The merged walk of one prefix, resumable from a checkpoint.
pub(crate) struct Walk<'a> {
    source: &'a Bucket,
    target: &'a Bucket,
    prefix: String,
    join: MergeJoin<Entry, Entry>,
    src: Cursor,
    tgt: Cursor,
    /// Keys up to this one were done before a restart.
    after: Option<String>,
}

impl<'a> Walk<'a> {
    /// `cap`: entries kept per key and side (more are counted, not kept).
    pub fn new(
        source: &'a Bucket,
        target: &'a Bucket,
        prefix: &str,
        resume: Option<&Checkpoint>,
        cap: usize,
    ) -> Self {
        Walk {
            source,
            target,
            prefix: prefix.to_string(),
            join: MergeJoin::new(cap),
            src: Cursor::new(resume.and_then(|c| c.source_marker.as_ref())),
            tgt: Cursor::new(resume.and_then(|c| c.target_marker.as_ref())),
            after: resume.map(|c| c.after.clone()),
        }
    }

    /// The next keys complete on both sides, in order; `None` at the end of the prefix.
    pub async fn next(&mut self) -> Result<Option<Vec<Joined<Entry, Entry>>>, AwsError> {
        loop {
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
            let prefix = &self.prefix;
            let (s, t) = tokio::join!(
                page(self.source, prefix, &mut self.src, fetch_src),
                page(self.target, prefix, &mut self.tgt, fetch_tgt),
            );
            if let Some(entries) = s? {
                self.join.push_left(entries, self.src.done);
            }
            if let Some(entries) = t? {
                self.join.push_right(entries, self.tgt.done);
            }
            let drained = self.join.drain();
            let ready = self.skip_done(drained);
            if !ready.is_empty() {
                return Ok(Some(ready));
            }
        }
    }

    fn skip_done(&self, batch: Vec<Joined<Entry, Entry>>) -> Vec<Joined<Entry, Entry>> {
        match &self.after {
            Some(after) => batch.into_iter().filter(|j| j.key > *after).collect(),
            None => batch,
        }
    }
}

/// The next page of one side, if asked for and not exhausted.
async fn page(
    bucket: &Bucket,
    prefix: &str,
    cursor: &mut Cursor,
    wanted: bool,
) -> Result<Option<Vec<Entry>>, AwsError> {
    if !wanted || cursor.done || (cursor.started && cursor.next.is_none()) {
        return Ok(None);
    }
    let p = match cursor.ahead.take() {
        Some(h) => h.await.map_err(|e| {
            AwsError::in_response(
                Service::S3,
                "ListObjectVersions",
                bucket.uri(prefix),
                ErrorKind::Other,
                None,
                format!("the read-ahead listing stopped: {e}"),
            )
        })??,
        None => bucket.list_versions(prefix, cursor.next.as_ref()).await?,
    };
    cursor.started = true;
    cursor.done = p.next.is_none();
    cursor.next = p.next;
    if let Some(next) = &cursor.next {
        let (bucket, prefix, next) = (bucket.clone(), prefix.to_string(), next.clone());
        cursor.ahead = Some(tokio::spawn(async move {
            bucket.list_versions(&prefix, Some(&next)).await
        }));
    }
    Ok(Some(p.entries))
}
