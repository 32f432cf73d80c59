//! The sweeper: one sweep run over a list of prefixes.
//!
//! Per prefix: take its lease (or find it busy), walk both sides merged from the checkpoint,
//! nominate orphans, and decide each one exactly as an event's key is decided (the `Purger`:
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
use tracing::{error, info};

use super::budget::{self, RunHandle};
use super::frontier::Frontier;
use super::lease::{self, Lease, LeaseStatus, RunKind, Stats};
use super::nominate::{Nomination, Orphan, nominate};
use super::report::{Fate, OrphanLine, Summary, SweepEnded, Tally, fate, lease_finished, worst};
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
    target: Bucket,
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

    /// Sweeps every prefix in turn; `on_line` gets each orphan as it is decided.
    pub async fn run(
        &self,
        prefixes: &[String],
        kind: RunKind,
        shutdown: &CancellationToken,
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
    ) -> Summary {
        let started = Instant::now();
        let sweep = &self.config.sweep;
        let opened = RunHandle::open(
            &self.store,
            kind,
            prefixes,
            sweep.max_deletes.get(),
            budget::block_for(sweep.concurrency.get()),
        )
        .await;
        let (stats, result, run_id, reserved) = match opened {
            Ok(run) => {
                let run_id = run.run_id().await;
                let (stats, result) = self
                    .prefixes(prefixes, kind, &run, &run_id, shutdown, on_line)
                    .await;
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
            duration_seconds: started.elapsed().as_secs_f64(),
            result,
        }
    }

    /// Each prefix of an opened run in turn; the run is finished (completed when every prefix
    /// was, by this process or another) and its carried result folded in.
    async fn prefixes(
        &self,
        prefixes: &[String],
        kind: RunKind,
        run: &RunHandle,
        run_id: &str,
        shutdown: &CancellationToken,
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
    ) -> (Stats, SweepResult) {
        let mut stats = Stats::default();
        let mut result = SweepResult::Completed;
        let mut unfinished = Vec::new();
        for prefix in prefixes {
            if shutdown.is_cancelled() {
                result = worst(result, SweepResult::Interrupted);
                unfinished.push(prefix.clone());
                continue;
            }
            match self
                .prefix(prefix, kind, run, run_id, shutdown, on_line)
                .await
            {
                Ok((s, r)) => {
                    stats.add(&s);
                    result = worst(result, r);
                    if !lease_finished(r) {
                        unfinished.push(prefix.clone());
                    }
                }
                Err(e) => {
                    error!(%prefix, error = %e, "sweep failed; the next run resumes from the checkpoint");
                    result = worst(result, SweepResult::Failed);
                    unfinished.push(prefix.clone());
                }
            }
        }
        let completed = self.all_completed(&unfinished, run_id).await;
        run.finish(completed).await;
        if let Some(carried) = run.carried().await {
            result = worst(result, carried);
        }
        (stats, result)
    }

    /// One prefix: its lease, the walk from its checkpoint, each orphan decided (up to
    /// `sweep.concurrency` at once, in walk order), checkpoints as keys are decided, the end.
    async fn prefix(
        &self,
        prefix: &str,
        kind: RunKind,
        run: &RunHandle,
        run_id: &str,
        shutdown: &CancellationToken,
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
    ) -> Result<(Stats, SweepResult), StoreError> {
        let Some((lease, etag, resumes)) = self.take_lease(prefix, kind, run_id).await? else {
            // Done in this run already (by this replica before a restart, or another): its
            // result stands; otherwise another replica is at it.
            let result = self.completed_result(prefix, run_id).await;
            return Ok((Stats::default(), result.unwrap_or(SweepResult::Busy)));
        };
        if resumes {
            info!(%prefix, run_id = %lease.run_id, after = ?lease.checkpoint.as_ref().map(|c| &c.after),
                  "resuming an interrupted sweep from its checkpoint");
        }
        let (mut walk, guard, mut at, mut t) = self.open(prefix, kind, run, lease, etag);
        let mut pending = FuturesOrdered::new();
        let tracked = self
            .health
            .as_ref()
            .map(|h| h.track("sweep", self.target.uri(prefix)));
        while let Some(batch) = next_batch(&mut walk, &mut pending, &mut t, shutdown, on_line).await
        {
            if let Some(tracked) = &tracked {
                tracked.progress();
            }
            for j in batch {
                if let Some(orphan) = self.take(&j, &mut t, guard.young_after, on_line) {
                    while pending.len() >= self.config.sweep.concurrency.get() {
                        if let Some(f) = pending.next().await {
                            t.decided(f, on_line);
                        }
                    }
                    t.frontier.candidate(&j);
                    pending.push_back(self.decide(orphan, &guard));
                }
                if !self
                    .checkpoint_if_due(&mut at, &t, pending.is_empty())
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
            t.decided(f, on_line);
        }
        self.finish(at, t).await
    }

    /// The walk of `prefix` from its lease's checkpoint, what its decisions share, the lease
    /// as held, and a fresh tally.
    fn open<'s, 'r>(
        &'s self,
        prefix: &'s str,
        kind: RunKind,
        run: &'r RunHandle,
        lease: Lease,
        etag: String,
    ) -> (Walk<'s>, Guard<'r>, Held, Tally<'s>) {
        let walk = Walk::new(
            &self.source,
            &self.target,
            prefix,
            lease.checkpoint.as_ref(),
            self.policy.limit + 1,
            self.config.sweep.walk,
        );
        let min_age = chrono::Duration::from_std(self.config.sweep.min_age);
        let guard = Guard {
            kind,
            run,
            stopped: run.stop_flag(),
            run_id: lease.run_id.clone(),
            young_after: Utc::now() - min_age.unwrap_or(chrono::Duration::MAX),
        };
        let frontier = Frontier::resume(lease.checkpoint.clone());
        let at = Held {
            name: lease::name(prefix),
            lease,
            etag,
            last_write: Instant::now(),
        };
        (walk, guard, at, Tally::new(prefix, &self.metrics, frontier))
    }

    /// One joined key of the walk: counted, and, if it is an orphan old enough to decide,
    /// returned to be decided (a young one is reported kept).
    fn take(
        &self,
        j: &Joined<Entry, Entry>,
        t: &mut Tally,
        young_after: DateTime<Utc>,
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
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
    ) -> Result<bool, StoreError> {
        if at.last_write.elapsed() < self.config.sweep.checkpoint_interval {
            return Ok(true);
        }
        at.lease.checkpoint = t.frontier.checkpoint(idle);
        let kept = self.save(at, &t.stats).await?;
        at.last_write = Instant::now();
        Ok(kept)
    }

    /// The prefix's end: its lease completed (or its checkpoint saved for the next run).
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
        info!(%prefix, scanned_source = stats.scanned_source, scanned_target = stats.scanned_target,
              orphans = stats.orphans, purged = stats.purged, would_purge = stats.would_purge,
              result = %result, "sweep of prefix ended");
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

/// What every decision of one prefix's walk shares: the run and its guardrails.
struct Guard<'r> {
    kind: RunKind,
    run: &'r RunHandle,
    /// Set on the first delete error: nothing more is deleted in this run.
    stopped: Arc<AtomicBool>,
    run_id: String,
    /// Entries newer than this are too young to decide.
    young_after: DateTime<Utc>,
}

/// The prefix's lease as this process holds it.
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
    on_line: &mut (dyn FnMut(&OrphanLine) + Send),
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
