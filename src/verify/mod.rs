//! Post-sync verification: did every object of the synced partitions land in the target?
//!
//! For each partition, the source's and the target's current objects (ListObjectsV2, every
//! page, both at once) are merge-joined by key and compared by size ([`compare`]). An object
//! last modified in the source after the execution started is `late`, not missing: a partition
//! still being written is not chased forever. Nothing here deletes anything; objects found
//! only in the target are reported as `extra`.

mod compare;

pub use compare::{Counts, EXAMPLES, Partition, PartitionCompare, PartitionReport};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Object};
use crate::merge::{MergeJoin, Need};

/// Partitions listed at once.
const CONCURRENCY: usize = 8;

/// A date's verification, as recorded in its claim and shown in `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub at: DateTime<Utc>,
    pub partitions: usize,
    pub incomplete_partitions: usize,
    #[serde(flatten)]
    pub counts: Counts,
    /// The executions reported 0 files while the source partitions hold objects.
    #[serde(default)]
    pub transferred_nothing: bool,
    /// Up to [`EXAMPLES`] keys missing from the target, across partitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_keys: Vec<String>,
}

impl Verification {
    /// Sums partition reports; `files_transferred` is what the executions reported.
    pub(crate) fn summarize(reports: &[PartitionReport], files_transferred: Option<i64>) -> Self {
        let mut counts = Counts::default();
        let mut missing_keys = Vec::new();
        for r in reports {
            counts.add(&r.counts);
            for k in r.missing_keys.iter().chain(&r.size_mismatched_keys) {
                if missing_keys.len() < EXAMPLES {
                    missing_keys.push(k.clone());
                }
            }
        }
        Verification {
            at: Utc::now(),
            partitions: reports.len(),
            incomplete_partitions: reports.iter().filter(|r| !r.complete()).count(),
            transferred_nothing: files_transferred == Some(0) && counts.expected > 0,
            counts,
            missing_keys,
        }
    }

    pub fn complete(&self) -> bool {
        self.counts.complete()
    }
}

/// Compares one partition's current objects on both sides. Objects the source last modified
/// after `late_after` are counted as late, not missing.
pub async fn partition(
    source: &Bucket,
    target: &Bucket,
    p: &Partition,
    late_after: Option<DateTime<Utc>>,
) -> Result<PartitionReport, AwsError> {
    let mut join: MergeJoin<Object, Object> = MergeJoin::new(1);
    let mut cmp = PartitionCompare::new(late_after);
    let (mut src_token, mut tgt_token) = (None, None);
    loop {
        let need = join.need();
        let (fetch_source, fetch_target) = match need {
            Need::Nothing => break,
            Need::Left => (true, false),
            Need::Right => (false, true),
            Need::Both => (true, true),
        };
        let (s, t) = tokio::join!(
            async {
                match fetch_source {
                    true => Some(source.list_objects(&p.prefix, None, src_token.take()).await),
                    false => None,
                }
            },
            async {
                match fetch_target {
                    true => Some(target.list_objects(&p.prefix, None, tgt_token.take()).await),
                    false => None,
                }
            }
        );
        if let Some(page) = s {
            let page = page?;
            join.push_left(page.objects, page.next.is_none());
            src_token = page.next;
        }
        if let Some(page) = t {
            let page = page?;
            join.push_right(page.objects, page.next.is_none());
            tgt_token = page.next;
        }
        for j in join.drain() {
            cmp.add(&j);
        }
    }
    Ok(cmp.finish(p))
}

/// Compares every partition, each with its own cutoff for late objects, several at once,
/// in the order given.
pub async fn partitions(
    source: &Bucket,
    target: &Bucket,
    parts: &[(Partition, Option<DateTime<Utc>>)],
) -> Result<Vec<PartitionReport>, AwsError> {
    // The futures are made first: a borrowing closure inside the stream trips the compiler's
    // `Send` inference for the tasks that await this.
    let each: Vec<_> = parts
        .iter()
        .map(|(p, late_after)| partition(source, target, p, *late_after))
        .collect();
    futures::stream::iter(each)
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}
