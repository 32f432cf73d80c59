//! The sweeper: one sweep run over a list of prefixes.
//!
//! Per prefix: its run's shard layout ([`super::shard`]); per shard, up to
//! `sweep.parallelism` at once: take its lease (or find it busy or done), walk both sides
//! merged from the checkpoint, nominate orphans, and decide each one exactly as an event's key is decided (the `Purger`:
//! exact-key re-listing of both sides, `decide`, the race guard, `max_versions_per_key`, the
//! audited deleter, reason `sweep`). Guardrails: at most `max_deletes` keys purged per run,
//! across restarts (the run document records each reservation before its deletion), nothing
//! deleted after the first delete error (not even deletions already waiting to be sent),
//! nothing younger than `min_age` (on the walk and again on the re-listing that decides). With
//! `purge.dry_run` every run is a dry run. The lease's checkpoint only moves past a key once
//! every key up to it is decided.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::budget::{self, RunHandle};
use super::frontier::Frontier;
use super::lease::{Lease, LeaseStatus, RunKind, Stats};
use super::leasing::{ShardRef, Taken};
use super::nominate::{Nomination, Orphan, nominate};
use super::progress::{Progress, ShardEnd};
use super::report::{Fate, OnLine, Summary, SweepEnded, Tally, fate, lease_finished, worst};
use super::shard::Layout;
use super::walk::Walk;
use crate::aws::Clients;
use crate::aws::s3::{Bucket, Entry};
use crate::config::Config;
use crate::health::TaskHandle;
use crate::labels::{KeptReason, SweepResult};
use crate::merge::Joined;
use crate::metrics::Metrics;
use crate::purge::decide::Policy;
use crate::purge::purger::KeyRequest;
use crate::purge::{KeyOutcome, PurgeError, Purger};
use crate::store::{JsonStore, StoreError};

/// Everything a sweep needs.
#[derive(Clone)]
pub struct Sweeper {
    pub(super) config: Arc<Config>,
    live: Purger,
    dry: Purger,
    source: Bucket,
    pub(super) target: Bucket,
    pub(super) store: JsonStore,
    policy: Policy,
    metrics: Metrics,
    pub holder: String,
    health: Option<TaskHandle>,
}

impl Sweeper {
    /// Must be called within a Tokio runtime (the purger starts its deleter).
    pub fn new(config: Arc<Config>, clients: &Clients, metrics: Metrics) -> Self {
        let live = Purger::new(
            &config,
            clients.source.clone(),
            clients.target.clone(),
            metrics.clone(),
            false,
        );
        let dry = live.as_dry_run();
        Sweeper {
            source: live.source.clone(),
            target: live.target.clone(),
            store: JsonStore::new(
                Bucket::new(
                    clients.source.clone(),
                    &config.state.bucket,
                    metrics.clone(),
                ),
                &config.state.prefix,
            ),
            policy: Policy::from_config(&config.purge),
            holder: crate::context::holder_id(&config.state.holder_id),
            health: None,
            live,
            dry,
            metrics,
            config,
        }
    }

    pub(crate) fn with_health(mut self, handle: TaskHandle) -> Self {
        self.health = Some(handle);
        self
    }

    pub fn store(&self) -> &JsonStore {
        &self.store
    }

    /// Sweeps every prefix, up to `sweep.parallelism` shards at once; `on_line` gets each
    /// orphan as it is decided.
    pub async fn run(
        &self,
        prefixes: &[String],
        kind: RunKind,
        shutdown: &CancellationToken,
        on_line: &OnLine<'_>,
    ) -> Summary {
        self.run_with(prefixes, kind, shutdown, on_line, &Progress::default())
            .await
    }

    /// [`Sweeper::run`], counting its progress in `progress` (a display reads it meanwhile).
    pub async fn run_with(
        &self,
        prefixes: &[String],
        kind: RunKind,
        shutdown: &CancellationToken,
        on_line: &OnLine<'_>,
        progress: &Progress,
    ) -> Summary {
        let started = Instant::now();
        let sweep = &self.config.sweep;
        let opened = RunHandle::open(
            &self.store,
            kind,
            prefixes,
            sweep.max_deletes.get(),
            budget::block_for(sweep.concurrency.get() * sweep.parallelism.get()),
        )
        .await;
        let (stats, result, run_id, reserved) = match opened {
            Ok(run) => {
                let run_id = run.run_id().await;
                let r = Run {
                    kind,
                    handle: &run,
                    run_id: &run_id,
                    shutdown,
                    on_line,
                    progress,
                };
                let (stats, result) = self.prefixes(prefixes, &r).await;
                (stats, result, run_id, run.reserved().await)
            }
            Err(e) => {
                error!(error = %e, "cannot open the sweep run in the state bucket; nothing swept");
                (Stats::default(), SweepResult::Failed, String::new(), 0)
            }
        };
        SweepEnded {
            result,
            stats: &stats,
        }
        .record(&self.metrics, self.health.as_ref());
        Summary {
            summary: true,
            prefixes: prefixes.to_vec(),
            run_id,
            dry_run: kind != RunKind::Purge || self.live.dry_run(),
            stats,
            reserved,
            shards: progress.snapshot(),
            duration_seconds: started.elapsed().as_secs_f64(),
            result,
        }
    }

    /// The prefixes of an opened run: each one's layout, then their shards, up to
    /// `sweep.parallelism` at once. The run is finished (completed when every prefix was, by
    /// this process or others) and its carried result folded in.
    async fn prefixes(&self, prefixes: &[String], r: &Run<'_>) -> (Stats, SweepResult) {
        let mut result = SweepResult::Completed;
        let mut layouts = Vec::new();
        for prefix in prefixes {
            match self.take_layout(prefix, r.kind, r.run_id).await {
                Ok(l) => layouts.push(l),
                Err(e) => {
                    error!(%prefix, error = %e, "cannot split the prefix into shards; not swept");
                    result = SweepResult::Failed;
                }
            }
        }
        let shards: Vec<(&Layout, ShardRef)> = layouts
            .iter()
            .flat_map(|l| {
                l.ranges()
                    .into_iter()
                    .enumerate()
                    .map(move |(index, range)| {
                        let s = ShardRef {
                            prefix: &l.prefix,
                            index,
                            range,
                            kind: r.kind,
                            run_id: r.run_id,
                        };
                        (l, s)
                    })
            })
            .collect();
        r.progress.shards(shards.len());
        // The futures are made before the stream, not by a closure in it: the compiler cannot
        // prove such a stream `Send` for every lifetime, and the scheduler's task must be.
        let walks: Vec<_> = shards
            .into_iter()
            .map(|(l, s)| self.shard_of(l, s, r))
            .collect();
        let ends: Vec<(Stats, SweepResult)> = futures::stream::iter(walks)
            .buffer_unordered(self.config.sweep.parallelism.get())
            .collect()
            .await;
        let mut stats = Stats::default();
        for (s, res) in &ends {
            stats.add(s);
            result = worst(result, *res);
        }
        // Completed when every prefix's document says so: the last shard's walker, here or
        // on another replica, recorded it. Then the run's result is theirs, shards this
        // process found busy included; otherwise what this process saw.
        let completed = self.all_completed(prefixes, r.run_id).await;
        if let Some(all) = completed {
            result = all;
        }
        r.handle.finish(completed.is_some()).await;
        if let Some(carried) = r.handle.carried().await {
            result = worst(result, carried);
        }
        (stats, result)
    }

    /// One shard: its walk, and once it is completed, the prefix's if it was the last.
    async fn shard_of(
        &self,
        layout: &Layout,
        s: ShardRef<'_>,
        r: &Run<'_>,
    ) -> (Stats, SweepResult) {
        let (prefix, index) = (s.prefix, s.index);
        let (stats, result, end) = match self.shard(s, r).await {
            Ok(ended) => ended,
            Err(e) => {
                error!(%prefix, shard = index, error = %e, "sweep of a shard failed; the next run resumes from its checkpoint");
                (Stats::default(), SweepResult::Failed, ShardEnd::Left)
            }
        };
        if matches!(end, ShardEnd::Finished | ShardEnd::AlreadyDone)
            && let Err(e) = self.close_prefix(layout).await
        {
            warn!(%prefix, error = %e, "cannot record the prefix completed; the run is not");
        }
        self.publish(r.progress);
        (stats, result)
    }

    /// One shard of a prefix: its lease, the walk from its checkpoint, each orphan decided
    /// (up to `sweep.concurrency` at once, in walk order), checkpoints as keys are decided,
    /// the end.
    async fn shard(
        &self,
        s: ShardRef<'_>,
        r: &Run<'_>,
    ) -> Result<(Stats, SweepResult, ShardEnd), StoreError> {
        if r.shutdown.is_cancelled() {
            return Ok((Stats::default(), SweepResult::Interrupted, ShardEnd::Left));
        }
        let (lease, etag, resumes) = match self.take_lease(&s).await? {
            Taken::Held(l, e, resumes) => (*l, e, resumes),
            Taken::Busy => {
                r.progress.shard_ended(ShardEnd::Elsewhere, false);
                return Ok((Stats::default(), SweepResult::Busy, ShardEnd::Elsewhere));
            }
            Taken::Done(result) => {
                r.progress.shard_ended(ShardEnd::AlreadyDone, false);
                return Ok((Stats::default(), result, ShardEnd::AlreadyDone));
            }
        };
        if resumes {
            info!(prefix = %s.prefix, shard = s.index, run_id = %lease.run_id,
                  after = ?lease.checkpoint.as_ref().map(|c| &c.after),
                  "resuming an interrupted sweep from its checkpoint");
        }
        r.progress.shard_started();
        self.publish(r.progress);
        let ended = self.walk_shard(&s, r, lease, etag).await;
        let end = match &ended {
            Ok((_, res)) if lease_finished(*res) => ShardEnd::Finished,
            _ => ShardEnd::Left,
        };
        r.progress.shard_ended(end, true);
        ended.map(|(stats, res)| (stats, res, end))
    }

    /// The walk of a held shard to its end (or until it stops).
    async fn walk_shard(
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
                    .checkpoint_if_due(&mut at, &t, pending.is_empty(), r.progress)
                    .await?
                {
                    t.worsen(SweepResult::Busy);
                    break;
                }
            }
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

    /// The run's progress, in `/status`.
    fn publish(&self, progress: &Progress) {
        if let Some(h) = &self.health {
            h.set_detail(
                "progress",
                serde_json::to_value(progress.snapshot()).unwrap_or_default(),
            );
        }
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
    ) -> Result<bool, StoreError> {
        if at.last_write.elapsed() < self.config.sweep.checkpoint_interval {
            return Ok(true);
        }
        at.lease.checkpoint = t.frontier.checkpoint(idle);
        self.publish(progress);
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
            result,
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
        if result != SweepResult::Busy {
            self.save(&mut at, &stats).await?;
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
            Some(KeptReason::MaxDeletes)
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

/// What every shard walk of a run shares.
struct Run<'r> {
    kind: RunKind,
    handle: &'r RunHandle,
    run_id: &'r str,
    shutdown: &'r CancellationToken,
    on_line: &'r OnLine<'r>,
    progress: &'r Progress,
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

/// The shard's lease as this process holds it.
pub(super) struct Held {
    pub(super) name: String,
    pub(super) lease: Lease,
    pub(super) etag: String,
    pub(super) last_write: Instant,
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
