//! A prefix's shards as a sweeper finds them, agrees on them with the other replicas in the
//! run, and closes the prefix once every shard is done.

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use tracing::info;

use super::lease::{self, Lease, LeaseStatus, RunKind};
use super::report::worst;
use super::shard::{self, Layout};
use super::sweeper::Sweeper;
use crate::aws::AwsError;
use crate::labels::SweepResult;
use crate::store::{StoreError, Written};

/// Attempts at a conditional write of a prefix's document before giving up on it.
const WRITE_ATTEMPTS: usize = 8;
/// Folders listed, or shard leases read, at once.
const LISTINGS_AT_ONCE: usize = 8;

impl Sweeper {
    /// The layout of `prefix` in run `run_id`: the one a replica of the run wrote, or one made
    /// now from the target's folders and written first (the conditional write decides which).
    /// `None` while another run's walk of the prefix is under way (another kind, another set
    /// of prefixes, an earlier version): its shards are not taken from under it.
    pub(super) async fn take_layout(
        &self,
        prefix: &str,
        kind: RunKind,
        run_id: &str,
    ) -> Result<Option<Layout>, StoreError> {
        let name = lease::name(prefix);
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.store.get::<Layout>(&name).await?;
            if let Some(s) = stored.as_ref() {
                if s.value.serves(run_id, kind) {
                    return Ok(Some(s.value.clone()));
                }
                if self.walked_elsewhere(&s.value).await? {
                    info!(%prefix, run_id = %s.value.run_id, "another run is sweeping the prefix; skipped");
                    return Ok(None);
                }
            }
            let wanted = shard::wanted(self.config.sweep.parallelism.get());
            let bounds = shard::bounds(self.folders(prefix, wanted).await?, wanted);
            let mut layout = Layout::new(prefix, run_id, kind, bounds, Utc::now());
            layout.holder = self.holder.clone();
            let written = match stored {
                Some(s) => self.store.update(&name, &layout, &s.etag).await?,
                None => self.store.create(&name, &layout).await?,
            };
            if let Written::Ok { .. } = written {
                info!(%prefix, run_id, shards = layout.ranges().len(), "prefix split into shards");
                return Ok(Some(layout));
            }
        }
        Err(StoreError::Contended {
            uri: self.store.uri(&name),
        })
    }

    /// Whether another run's layout (or an earlier version's prefix lease) still has a walk
    /// under way by another holder.
    async fn walked_elsewhere(&self, other: &Layout) -> Result<bool, StoreError> {
        let (me, now, ttl) = (&self.holder, Utc::now(), self.config.sweep.lease_ttl);
        if other.status == LeaseStatus::Completed {
            return Ok(false);
        }
        if other.bounds.is_none() {
            return Ok(shard::live(
                other.status,
                &other.holder,
                other.updated_at,
                me,
                now,
                ttl,
            ));
        }
        for i in 0..other.ranges().len() {
            let l = self
                .store
                .get::<Lease>(&shard::lease_name(&other.prefix, i))
                .await?;
            if let Some(l) = l.map(|s| s.value).filter(|l| l.run_id == other.run_id)
                && shard::live(l.status, &l.holder, l.updated_at, me, now, ttl)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The target's folders under `prefix`, a level further down while there are fewer than
    /// `wanted` and `sweep.shard_depth` allows; a folder with none below stays as it is.
    async fn folders(&self, prefix: &str, wanted: usize) -> Result<Vec<String>, AwsError> {
        let depth = self.config.sweep.shard_depth;
        let mut found = vec![prefix.to_string()];
        let mut level = 0;
        while shard::split_further(found.len(), wanted, level, depth) {
            let listings: Vec<_> = found.iter().map(|f| self.subfolders(f)).collect();
            let below: Vec<Vec<String>> = futures::stream::iter(listings)
                .buffered(LISTINGS_AT_ONCE)
                .try_collect()
                .await?;
            if below.iter().all(Vec::is_empty) {
                break;
            }
            found = found
                .into_iter()
                .zip(below)
                .flat_map(|(f, below)| if below.is_empty() { vec![f] } else { below })
                .collect();
            level += 1;
        }
        Ok(found)
    }

    /// The folders one level below `folder` in the target (every page).
    async fn subfolders(&self, folder: &str) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self.target.list_objects(folder, Some("/"), token).await?;
            out.extend(page.prefixes);
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// How `prefix`'s walk ended in run `run_id`, if every shard was completed (by anyone).
    pub(super) async fn completed_result(&self, prefix: &str, run_id: &str) -> Option<SweepResult> {
        match self.store.get::<Layout>(&lease::name(prefix)).await {
            Ok(Some(l)) => l.value.completed_in(run_id),
            _ => None,
        }
    }

    /// The run's result if every prefix has been completed in `run_id` by now (here, or
    /// partly by other replicas): the worst of the prefixes' results.
    pub(super) async fn all_completed(
        &self,
        prefixes: &[String],
        run_id: &str,
    ) -> Option<SweepResult> {
        let mut result = SweepResult::Completed;
        for prefix in prefixes {
            result = worst(result, self.completed_result(prefix, run_id).await?);
        }
        Some(result)
    }

    /// After one of its shards completed: if every shard of `layout` has, the prefix's document
    /// says so, with the worst of their results. Each replica writes its shard's completion
    /// before looking at the others', so the last one to finish sees them all.
    pub(super) async fn close_prefix(&self, layout: &Layout) -> Result<bool, StoreError> {
        let mut result = SweepResult::Completed;
        let ranges = layout.ranges();
        let names: Vec<String> = (0..ranges.len())
            .map(|i| shard::lease_name(&layout.prefix, i))
            .collect();
        let reads: Vec<_> = names.iter().map(|n| self.store.get::<Lease>(n)).collect();
        let leases: Vec<_> = futures::stream::iter(reads)
            .buffered(LISTINGS_AT_ONCE)
            .try_collect()
            .await?;
        for (l, range) in leases.into_iter().zip(ranges) {
            match l.map(|s| s.value) {
                Some(l)
                    if l.run_id == layout.run_id
                        && l.range == range
                        && l.status == LeaseStatus::Completed =>
                {
                    result = worst(result, l.result.unwrap_or(SweepResult::Completed));
                }
                _ => return Ok(false),
            }
        }
        let name = lease::name(&layout.prefix);
        for _ in 0..WRITE_ATTEMPTS {
            let Some(s) = self.store.get::<Layout>(&name).await? else {
                return Ok(false);
            };
            if s.value.run_id != layout.run_id || s.value.status == LeaseStatus::Completed {
                return Ok(s.value.completed_in(&layout.run_id).is_some());
            }
            let now = Utc::now();
            let doc = Layout {
                status: LeaseStatus::Completed,
                completed_at: Some(now),
                updated_at: now,
                result: Some(result),
                ..s.value
            };
            if let Written::Ok { .. } = self.store.update(&name, &doc, &s.etag).await? {
                return Ok(true);
            }
        }
        Err(StoreError::Contended {
            uri: self.store.uri(&name),
        })
    }
}
