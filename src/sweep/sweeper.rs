//! The sweeper: one sweep run over a list of prefixes.
//!
//! Per prefix: its run's shard layout ([`super::shard`]). Then the shards, up to
//! `sweep.parallelism` at once: each one's lease taken (or found busy or done) and its walk
//! ([`super::shard_walk`]): both sides merged from the checkpoint, orphans nominated and each
//! decided exactly as an event's key is decided (the `Purger`: exact-key re-listing of both
//! sides, `decide`, the race guard, `max_versions_per_key`, the audited deleter, reason
//! `sweep`). Guardrails, for the whole run whatever the shards: at most `max_deletes` keys
//! purged per run, across restarts (the run document records each reservation before its
//! deletion), nothing deleted after the first delete error (not even deletions already
//! waiting to be sent), nothing younger than `min_age` (on the walk and again on the
//! re-listing that decides). With `purge.dry_run` every run is a dry run. A shard's
//! checkpoint only moves past a key once every key up to it is decided.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::budget::{self, RunHandle};
use super::lease::{RunKind, Stats};
use super::progress::{Progress, ShardEnd};
use super::report::{OnLine, Summary, SweepEnded, lease_finished, worst};
use super::shard::{Layout, ShardRef, Taken};
use crate::aws::Clients;
use crate::aws::s3::Bucket;
use crate::config::Config;
use crate::health::TaskHandle;
use crate::labels::SweepResult;
use crate::metrics::Metrics;
use crate::purge::Purger;
use crate::purge::decide::Policy;
use crate::store::{JsonStore, StoreError};

/// Everything a sweep needs.
#[derive(Clone)]
pub struct Sweeper {
    pub(super) config: Arc<Config>,
    pub(super) live: Purger,
    pub(super) dry: Purger,
    pub(super) source: Bucket,
    pub(super) target: Bucket,
    pub(super) store: JsonStore,
    pub(super) policy: Policy,
    pub(super) metrics: Metrics,
    pub holder: String,
    pub(super) health: Option<TaskHandle>,
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
            budget::block_for(sweep.concurrency.get()),
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
                Ok(Some(l)) => layouts.push(l),
                Ok(None) => result = worst(result, SweepResult::Busy),
                Err(e) => {
                    error!(%prefix, error = %e, "cannot split the prefix into shards; not swept");
                    result = SweepResult::Failed;
                }
            }
        }
        // Per prefix, its shards this process has yet to end: the last one looks whether the
        // prefix is complete (reading every shard's lease once, not once a shard).
        let left: Vec<AtomicUsize> = layouts
            .iter()
            .map(|l| AtomicUsize::new(l.ranges().len()))
            .collect();
        let shards = shard_refs(&layouts, &left, r);
        r.progress.shards(shards.len());
        // The futures are made before the stream, not by a closure in it: the compiler cannot
        // prove such a stream `Send` for every lifetime, and the scheduler's task must be.
        let walks: Vec<_> = shards
            .into_iter()
            .map(|(l, left, s)| self.shard_of(l, left, s, r))
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

    /// One shard: its walk and, after this process's last shard of the prefix, whether the
    /// prefix is complete. (Every replica writes its shards' ends before it looks, so the one
    /// that ends last sees them all.)
    async fn shard_of(
        &self,
        layout: &Layout,
        left: &AtomicUsize,
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
        let last = left.fetch_sub(1, Ordering::SeqCst) == 1;
        if last
            && end != ShardEnd::Left
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

    /// The run's progress, in `/status`.
    pub(super) fn publish(&self, progress: &Progress) {
        if let Some(h) = &self.health {
            h.set_detail(
                "progress",
                serde_json::to_value(progress.snapshot()).unwrap_or_default(),
            );
        }
    }
}

/// Every shard of the layouts, in order, with its layout and its prefix's count of shards
/// this process has yet to end.
fn shard_refs<'a>(
    layouts: &'a [Layout],
    left: &'a [AtomicUsize],
    r: &Run<'a>,
) -> Vec<(&'a Layout, &'a AtomicUsize, ShardRef<'a>)> {
    let (kind, run_id) = (r.kind, r.run_id);
    layouts
        .iter()
        .zip(left)
        .flat_map(|(l, left)| {
            l.ranges()
                .into_iter()
                .enumerate()
                .map(move |(index, range)| {
                    let s = ShardRef {
                        prefix: &l.prefix,
                        index,
                        range,
                        kind,
                        run_id,
                    };
                    (l, left, s)
                })
        })
        .collect()
}

/// What every shard walk of a run shares.
pub(super) struct Run<'r> {
    pub(super) kind: RunKind,
    pub(super) handle: &'r RunHandle,
    pub(super) run_id: &'r str,
    pub(super) shutdown: &'r CancellationToken,
    pub(super) on_line: &'r OnLine<'r>,
    pub(super) progress: &'r Progress,
}
