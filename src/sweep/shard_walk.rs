//! One shard's walk, as a sweeper does it: the merged listing of both sides over the shard's
//! range from its checkpoint, each orphan nominated and decided (up to `sweep.concurrency` at
//! once, in walk order) within the run's guardrails, checkpoints written as keys are decided,
//! and the lease completed at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::budget::RunHandle;
use super::frontier::Frontier;
use super::lease::{Lease, LeaseStatus, RunKind, Stats};
use super::nominate::{Nomination, Orphan, nominate};
use super::progress::Progress;
use super::report::{Fate, OnLine, Tally, fate, lease_finished};
use super::shard::{Held, ShardRef};
use super::sweeper::{Run, Sweeper};
use super::walk::Walk;
use crate::aws::s3::Entry;
use crate::labels::{KeptReason, SweepResult};
use crate::merge::Joined;
use crate::purge::purger::KeyRequest;
use crate::purge::{KeyOutcome, PurgeError};
use crate::store::StoreError;

impl Sweeper {
    /// The walk of a held shard to its end (or until it stops).
    pub(super) async fn walk_shard(
        &self,
        s: &ShardRef<'_>,
        r: &Run<'_>,
        lease: Lease,
        etag: String,
    ) -> Result<(Stats, SweepResult), StoreError> {
        let (mut walk, guard, mut at, mut t) = self.open(s, r, lease, etag);
        let mut pending = FuturesOrdered::new();
        let tracked = self
            .health
            .as_ref()
            .map(|h| h.track("sweep", self.target.uri(s.prefix)));
        while let Some(batch) =
            next_batch(&mut walk, &mut pending, &mut t, r.shutdown, r.on_line).await
        {
            if let Some(tracked) = &tracked {
                tracked.progress();
            }
            for j in batch {
                if let Some(orphan) = self.take(&j, &mut t, guard.young_after, r.on_line) {
                    while pending.len() >= self.config.sweep.concurrency.get() {
                        if let Some(f) = pending.next().await {
                            t.decided(f, r.on_line);
                        }
                    }
                    t.frontier.candidate(&j);
                    pending.push_back(self.decide(orphan, &guard));
                }
                if !self
                    .checkpoint_if_due(&mut at, &t, pending.is_empty(), r.progress, r.handle)
                    .await?
                {
                    t.worsen(SweepResult::Busy);
                    break;
                }
            }
            t.flush_scanned();
            if t.result == SweepResult::Busy {
                break;
            }
        }
        while let Some(f) = pending.next().await {
            t.decided(f, r.on_line);
        }
        self.finish(at, t).await
    }

    /// The walk of a shard from its lease's checkpoint, what its decisions share, the lease
    /// as held, and a fresh tally.
    fn open<'s>(
        &'s self,
        s: &ShardRef<'s>,
        r: &Run<'s>,
        lease: Lease,
        etag: String,
    ) -> (Walk<'s>, Guard<'s>, Held, Tally<'s>) {
        let walk = Walk::new(
            &self.source,
            &self.target,
            s.prefix,
            &s.range,
            lease.checkpoint.as_ref(),
            self.policy.limit + 1,
            self.config.sweep.walk,
        );
        let min_age = chrono::Duration::from_std(self.config.sweep.min_age);
        let guard = Guard {
            kind: r.kind,
            run: r.handle,
            stopped: r.handle.stop_flag(),
            run_id: lease.run_id.clone(),
            young_after: Utc::now() - min_age.unwrap_or(chrono::Duration::MAX),
        };
        let frontier = Frontier::resume(lease.checkpoint.clone());
        let at = Held {
            name: s.lease_name(),
            lease,
            etag,
            last_write: Instant::now(),
        };
        let progress = r.progress;
        (
            walk,
            guard,
            at,
            Tally::new(s.prefix, &self.metrics, progress, frontier),
        )
    }

    /// One joined key of the walk: counted, and, if it is an orphan old enough to decide,
    /// returned to be decided (a young one is reported kept).
    fn take(
        &self,
        j: &Joined<Entry, Entry>,
        t: &mut Tally,
        young_after: DateTime<Utc>,
        on_line: &OnLine<'_>,
    ) -> Option<Orphan> {
        t.scanned(j);
        match nominate(j, &self.policy, young_after) {
            Nomination::NotOrphan => t.frontier.plain(j),
            Nomination::TooYoung(orphan) => {
                t.frontier.plain(j);
                t.report(orphan, Fate::Kept(KeptReason::TooYoung), on_line);
            }
            Nomination::Orphan(orphan) => {
                t.stats.orphans += 1;
                t.progress.orphan();
                self.metrics.sweep.orphan_found();
                return Some(orphan);
            }
        }
        None
    }

    /// A page can hold a thousand orphans: the lease is checkpointed every
    /// `sweep.checkpoint_interval` as keys are decided, not per page. False when another
    /// replica holds the lease now.
    async fn checkpoint_if_due(
        &self,
        at: &mut Held,
        t: &Tally<'_>,
        idle: bool,
        progress: &Progress,
        run: &RunHandle,
    ) -> Result<bool, StoreError> {
        if at.last_write.elapsed() < self.config.sweep.checkpoint_interval {
            return Ok(true);
        }
        at.lease.checkpoint = t.frontier.checkpoint(idle);
        self.publish(progress);
        run.refresh().await;
        let kept = self.save(at, &t.stats).await?;
        at.last_write = Instant::now();
        Ok(kept)
    }

    /// The shard's end: its lease completed (or its checkpoint saved for the next run).
    async fn finish(&self, mut at: Held, t: Tally<'_>) -> Result<(Stats, SweepResult), StoreError> {
        let Tally {
            prefix,
            stats,
            frontier,
            mut result,
            ..
        } = t;
        if lease_finished(result) {
            at.lease.status = LeaseStatus::Completed;
            at.lease.completed_at = Some(Utc::now());
            at.lease.result = Some(result);
            at.lease.checkpoint = None;
        } else {
            at.lease.checkpoint = frontier.checkpoint(true);
        }
        // A lease lost at the very end (another replica took it over) is that replica's
        // to finish: this walk ends busy, not completed.
        if result != SweepResult::Busy && !self.save(&mut at, &stats).await? {
            result = SweepResult::Busy;
        }
        info!(%prefix, shard = %at.name, scanned_source = stats.scanned_source, scanned_target = stats.scanned_target,
              orphans = stats.orphans, purged = stats.purged, would_purge = stats.would_purge,
              result = %result, "sweep of shard ended");
        Ok((stats, result))
    }

    /// Decides one orphan as an event's key would be, within the run's guardrails.
    async fn decide(&self, orphan: Orphan, g: &Guard<'_>) -> (Orphan, Fate) {
        let mut req = KeyRequest::new(&orphan.key, "sweep", &g.run_id);
        req.young_after = Some(g.young_after);
        let deletes = g.kind == RunKind::Purge && !self.live.dry_run();
        let kept = if !deletes {
            None
        } else if g.stopped.load(Ordering::SeqCst) {
            Some(KeptReason::AfterError)
        } else if !g.run.reserve().await {
            // Refused because the run was stopped elsewhere, or because its budget is spent.
            Some(match g.stopped.load(Ordering::SeqCst) {
                true => KeptReason::AfterError,
                false => KeptReason::MaxDeletes,
            })
        } else {
            None
        };
        let f = match (deletes, kept) {
            (false, _) => fate(self.dry.decide(req).await, true),
            // Decided, so the report says what would have happened had the guardrail allowed.
            (true, Some(why)) => match self.dry.decide(req).await {
                Ok(KeyOutcome::Purged { .. }) => Fate::Kept(why),
                other => fate(other, true),
            },
            (true, None) => {
                req.stop = Some(g.stopped.clone());
                let res = self.live.decide(req).await;
                if let Err(PurgeError::Delete { error, .. }) = &res {
                    g.stopped.store(true, Ordering::SeqCst);
                    g.run.stop(format!("{}: {error}", orphan.key)).await;
                }
                let f = fate(res, false);
                if !f.deleted_something() {
                    g.run.release();
                }
                f
            }
        };
        if matches!(f, Fate::Failed(..)) {
            g.run.decision_failed().await;
        }
        (orphan, f)
    }
}

/// What every decision of one shard's walk shares: the run and its guardrails.
struct Guard<'r> {
    kind: RunKind,
    run: &'r RunHandle,
    /// Set on the first delete error: nothing more is deleted in this run.
    stopped: Arc<AtomicBool>,
    run_id: String,
    /// Entries newer than this are too young to decide.
    young_after: DateTime<Utc>,
}

/// The walk's next page; decisions in flight go on (and are reported) while it is listed.
/// `None` at the end of the walk, on shutdown, or when the listing failed (the tally says).
async fn next_batch<F>(
    walk: &mut Walk<'_>,
    pending: &mut FuturesOrdered<F>,
    t: &mut Tally<'_>,
    shutdown: &CancellationToken,
    on_line: &OnLine<'_>,
) -> Option<Vec<Joined<Entry, Entry>>>
where
    F: std::future::Future<Output = (Orphan, Fate)>,
{
    if shutdown.is_cancelled() {
        t.worsen(SweepResult::Interrupted);
        return None;
    }
    let next = walk.next();
    tokio::pin!(next);
    let listed = loop {
        tokio::select! {
            r = &mut next => break r,
            Some(f) = pending.next(), if !pending.is_empty() => t.decided(f, on_line),
        }
    };
    match listed {
        Ok(batch) => batch,
        Err(e) => {
            error!(prefix = %t.prefix, error = %e, "sweep listing failed");
            t.worsen(SweepResult::Failed);
            None
        }
    }
}
