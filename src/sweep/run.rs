//! One sweep run over a list of prefixes.
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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::budget::{self, RunHandle};
use super::lease::{self, Checkpoint, Lease, LeaseAction, LeaseStatus, RunKind, Stats};
use super::nominate::{Nomination, Orphan, nominate};
use super::walk::Walk;
use crate::aws::Clients;
use crate::aws::s3::{Bucket, Entry};
use crate::config::Config;
use crate::health::TaskHandle;
use crate::labels::{KeptReason, Side, SweepResult};
use crate::merge::Joined;
use crate::metrics::Metrics;
use crate::purge::decide::Policy;
use crate::purge::purger::KeyRequest;
use crate::purge::{KeyOutcome, PurgeError, Purger};
use crate::store::{JsonStore, StoreError, Written};

/// What was done with one orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Every target entry of the key was deleted.
    Purged,
    /// Some entries were deleted; others are left (the race guard, a failed delete).
    PartlyPurged,
    /// A dry run or a report: decided, and it would have been purged.
    WouldPurge,
    Kept,
}

/// One line of a sweep's report: an orphan and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanLine {
    pub prefix: String,
    #[serde(flatten)]
    pub orphan: Orphan,
    pub action: Action,
    /// Target entries deleted (or, in a dry run, that would be).
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<KeptReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The last line of a sweep's report.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub summary: bool,
    pub prefixes: Vec<String>,
    /// The run this process took part in (several processes, and restarts, share one).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// Nothing was deleted: a dry run, a report, or `purge.dry_run`.
    pub dry_run: bool,
    #[serde(flatten)]
    pub stats: Stats,
    /// Keys the run has reserved for deletion so far, across restarts and replicas (at most
    /// `sweep.max_deletes`).
    pub reserved: u32,
    pub duration_seconds: f64,
    pub result: SweepResult,
}

impl Summary {
    /// The run completed within its guardrails.
    pub fn ok(&self) -> bool {
        self.result == SweepResult::Completed
    }
}

/// How one decided orphan ended.
#[derive(Debug)]
enum Fate {
    Purged {
        deleted: usize,
    },
    /// Entries deleted, others left; with the error when a delete failed.
    PartlyPurged {
        deleted: usize,
        error: Option<String>,
    },
    WouldPurge {
        deleted: usize,
    },
    Kept(KeptReason),
    Failed(KeptReason, String),
}

impl Fate {
    /// Whether the key used up a reservation of the run's budget: something was deleted.
    fn deleted_something(&self) -> bool {
        matches!(self, Fate::Purged { .. } | Fate::PartlyPurged { .. })
    }
}

/// Everything a sweep needs.
#[derive(Clone)]
pub struct Sweeper {
    config: Arc<Config>,
    live: Purger,
    dry: Purger,
    source: Bucket,
    target: Bucket,
    store: JsonStore,
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

    /// Sweeps every prefix in turn; `on_line` gets each orphan as it is settled.
    pub async fn run(
        &self,
        prefixes: &[String],
        kind: RunKind,
        shutdown: &CancellationToken,
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
    ) -> Summary {
        let started = Instant::now();
        let sweep = &self.config.sweep;
        let dry_run = kind != RunKind::Purge || self.live.dry_run();
        let mut stats = Stats::default();
        let mut result = SweepResult::Completed;
        let run = match RunHandle::open(
            &self.store,
            kind,
            prefixes,
            sweep.max_deletes.get(),
            budget::block_for(sweep.concurrency.get()),
        )
        .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                error!(error = %e, "cannot open the sweep run in the state bucket; nothing swept");
                result = SweepResult::Failed;
                None
            }
        };
        let mut run_id = String::new();
        if let Some(run) = &run {
            run_id = run.run_id().await;
            let mut unfinished = Vec::new();
            for prefix in prefixes {
                if shutdown.is_cancelled() {
                    result = worst(result, SweepResult::Interrupted);
                    unfinished.push(prefix.clone());
                    continue;
                }
                match self
                    .prefix(prefix, kind, run, &run_id, shutdown, on_line)
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
            let completed = self.all_completed(&unfinished, &run_id).await;
            run.finish(completed).await;
            if let Some(carried) = run.carried().await {
                result = worst(result, carried);
            }
        }
        let reserved = match &run {
            Some(r) => r.reserved().await,
            None => 0,
        };
        let m = &self.metrics;
        m.sweep.run_ended(result);
        if result == SweepResult::Completed {
            m.sweep.run_completed(Utc::now().timestamp(), stats.orphans);
        }
        if let Some(h) = &self.health {
            match result {
                SweepResult::Completed | SweepResult::Busy => h.record_success(),
                other => h.record_failure(format!("sweep ended {other}")),
            }
        }
        Summary {
            summary: true,
            prefixes: prefixes.to_vec(),
            run_id,
            dry_run,
            stats,
            reserved,
            duration_seconds: started.elapsed().as_secs_f64(),
            result,
        }
    }

    /// How `prefix`'s walk ended in run `run_id`, if someone completed it.
    async fn completed_result(&self, prefix: &str, run_id: &str) -> Option<SweepResult> {
        match self.store.get::<Lease>(&lease::name(prefix)).await {
            Ok(Some(l)) if l.value.run_id == run_id && l.value.status == LeaseStatus::Completed => {
                Some(l.value.result.unwrap_or(SweepResult::Completed))
            }
            _ => None,
        }
    }

    /// Whether every prefix this process did not finish has been completed in `run_id` by
    /// someone else by now (another replica held it).
    async fn all_completed(&self, unfinished: &[String], run_id: &str) -> bool {
        for prefix in unfinished {
            if self.completed_result(prefix, run_id).await.is_none() {
                return false;
            }
        }
        true
    }

    /// Takes `prefix`'s lease for run `run_id`: the lease and its ETag, whether it resumes, or
    /// `None` if another replica holds it or it is already done in this run.
    async fn take_lease(
        &self,
        prefix: &str,
        kind: RunKind,
        run_id: &str,
    ) -> Result<Option<(Lease, String, bool)>, StoreError> {
        let name = lease::name(prefix);
        let stored = self.store.get::<Lease>(&name).await?;
        let now = Utc::now();
        let ttl = self.config.sweep.lease_ttl;
        let action = lease::next_action(
            stored.as_ref().map(|s| &s.value),
            now,
            &self.holder,
            ttl,
            kind,
            run_id,
        );
        let (lease, written, resumes) = match (action, stored) {
            (LeaseAction::Busy { holder }, _) => {
                info!(%prefix, %holder, "prefix being swept by another replica; skipped");
                return Ok(None);
            }
            (LeaseAction::Done, _) => {
                info!(%prefix, run_id, "prefix already swept in this run; skipped");
                return Ok(None);
            }
            (LeaseAction::Resume, Some(s)) => {
                let l = Lease {
                    holder: self.holder.clone(),
                    updated_at: now,
                    ..s.value
                };
                let w = self.store.update(&name, &l, &s.etag).await?;
                (l, w, true)
            }
            (_, stored) => {
                let l = Lease {
                    prefix: prefix.to_string(),
                    holder: self.holder.clone(),
                    run_id: run_id.to_string(),
                    kind,
                    status: LeaseStatus::Running,
                    started_at: now,
                    updated_at: now,
                    completed_at: None,
                    result: None,
                    checkpoint: None,
                    stats: Stats::default(),
                };
                let w = match stored {
                    Some(s) => self.store.update(&name, &l, &s.etag).await?,
                    None => self.store.create(&name, &l).await?,
                };
                (l, w, false)
            }
        };
        Ok(match written {
            Written::Ok { etag } => Some((lease, etag, resumes)),
            Written::Conflict => {
                info!(%prefix, "another replica took the prefix first; skipped");
                None
            }
        })
    }

    async fn prefix(
        &self,
        prefix: &str,
        kind: RunKind,
        run: &RunHandle,
        run_id: &str,
        shutdown: &CancellationToken,
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
    ) -> Result<(Stats, SweepResult), StoreError> {
        let Some((mut lease, mut etag, resumes)) = self.take_lease(prefix, kind, run_id).await?
        else {
            // Done in this run already (by this replica before a restart, or another): its
            // result stands; otherwise another replica is at it.
            let result = self
                .completed_result(prefix, run_id)
                .await
                .unwrap_or(SweepResult::Busy);
            return Ok((Stats::default(), result));
        };
        let name = lease::name(prefix);
        if resumes {
            info!(%prefix, run_id = %lease.run_id, after = ?lease.checkpoint.as_ref().map(|c| &c.after),
                  "resuming an interrupted sweep from its checkpoint");
        }
        let sweep = &self.config.sweep;
        let cap = self.policy.limit + 1;
        let mut walk = Walk::new(
            &self.source,
            &self.target,
            prefix,
            lease.checkpoint.as_ref(),
            cap,
        );
        let young_after =
            Utc::now() - chrono::Duration::from_std(sweep.min_age).unwrap_or(chrono::Duration::MAX);
        let stopped = run.stop_flag();
        let run_id = lease.run_id.clone();
        let mut t = Tally {
            prefix,
            metrics: &self.metrics,
            stats: Stats::default(),
            frontier: Frontier::resume(lease.checkpoint.clone()),
            result: SweepResult::Completed,
        };
        let mut pending = FuturesOrdered::new();
        let mut last_write = Instant::now();
        let tracked = self
            .health
            .as_ref()
            .map(|h| h.track("sweep", self.target.uri(prefix)));
        loop {
            if shutdown.is_cancelled() {
                t.result = worst(t.result, SweepResult::Interrupted);
                break;
            }
            // Decisions in flight go on while the walk waits for a page.
            let next = walk.next();
            tokio::pin!(next);
            let listed = loop {
                tokio::select! {
                    r = &mut next => break r,
                    Some(f) = pending.next(), if !pending.is_empty() => t.settle(f, on_line),
                }
            };
            let batch = match listed {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    error!(%prefix, error = %e, "sweep listing failed");
                    t.result = worst(t.result, SweepResult::Failed);
                    break;
                }
            };
            if let Some(tracked) = &tracked {
                tracked.progress();
            }
            for j in batch {
                t.scanned(&j);
                match nominate(&j, &self.policy, young_after) {
                    Nomination::NotOrphan => t.frontier.plain(&j),
                    Nomination::TooYoung(orphan) => {
                        t.frontier.plain(&j);
                        t.report(orphan, Fate::Kept(KeptReason::TooYoung), on_line);
                    }
                    Nomination::Orphan(orphan) => {
                        t.stats.orphans += 1;
                        self.metrics.sweep.orphan_found();
                        while pending.len() >= sweep.concurrency.get() {
                            if let Some(f) = pending.next().await {
                                t.settle(f, on_line);
                            }
                        }
                        t.frontier.candidate(&j);
                        let on_source = !j.left.is_empty();
                        pending.push_back(self.decide(
                            orphan,
                            on_source,
                            kind,
                            run,
                            &stopped,
                            &run_id,
                            young_after,
                        ));
                    }
                }
                // A page can hold a thousand orphans: checkpoint as keys settle, not per page.
                if last_write.elapsed() >= sweep.checkpoint_interval {
                    lease.checkpoint = t.frontier.checkpoint(pending.is_empty());
                    if !self.save(&name, &mut lease, &mut etag, &t.stats).await? {
                        t.result = worst(t.result, SweepResult::Busy);
                        break;
                    }
                    last_write = Instant::now();
                }
            }
            if t.result == SweepResult::Busy {
                break;
            }
        }
        while let Some(f) = pending.next().await {
            t.settle(f, on_line);
        }
        let Tally {
            stats,
            frontier,
            result,
            ..
        } = t;
        let finished = lease_finished(result);
        if finished {
            lease.status = LeaseStatus::Completed;
            lease.completed_at = Some(Utc::now());
            lease.result = Some(result);
            lease.checkpoint = None;
        } else {
            lease.checkpoint = frontier.checkpoint(true);
        }
        if result != SweepResult::Busy {
            self.save(&name, &mut lease, &mut etag, &stats).await?;
        }
        info!(%prefix, scanned_source = stats.scanned_source, scanned_target = stats.scanned_target,
              orphans = stats.orphans, purged = stats.purged, would_purge = stats.would_purge,
              result = %result, "sweep of prefix ended");
        Ok((stats, result))
    }

    /// Refreshes the lease with the checkpoint and this session's stats; `false` when another
    /// replica holds it now.
    async fn save(
        &self,
        name: &str,
        lease: &mut Lease,
        etag: &mut String,
        session: &Stats,
    ) -> Result<bool, StoreError> {
        let mut doc = lease.clone();
        doc.updated_at = Utc::now();
        doc.stats.add(session);
        match self.store.update(name, &doc, etag).await? {
            Written::Ok { etag: t } => {
                *etag = t;
                lease.updated_at = doc.updated_at;
                Ok(true)
            }
            Written::Conflict => {
                warn!(prefix = %lease.prefix, "lost the sweep lease to another replica; stopping this prefix");
                Ok(false)
            }
        }
    }

    /// Decides one orphan as an event's key would be, within the run's guardrails.
    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &self,
        orphan: Orphan,
        on_source: bool,
        kind: RunKind,
        run: &RunHandle,
        stopped: &Arc<AtomicBool>,
        run_id: &str,
        young_after: chrono::DateTime<Utc>,
    ) -> (Orphan, Fate, bool) {
        let mut req = KeyRequest::new(&orphan.key, "sweep", run_id);
        req.young_after = Some(young_after);
        let deletes = kind == RunKind::Purge && !self.live.dry_run();
        let kept = if !deletes {
            None
        } else if stopped.load(Ordering::SeqCst) {
            Some(KeptReason::AfterError)
        } else if !run.reserve().await {
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
                req.stop = Some(stopped.clone());
                let res = self.live.decide(req).await;
                if let Err(PurgeError::Delete { error, .. }) = &res {
                    stopped.store(true, Ordering::SeqCst);
                    run.stop(format!("{}: {error}", orphan.key)).await;
                }
                let f = fate(res, false);
                if !f.deleted_something() {
                    run.release();
                }
                f
            }
        };
        if matches!(f, Fate::Failed(..)) {
            run.decision_failed().await;
        }
        (orphan, f, on_source)
    }
}

/// What one prefix's run has counted and settled so far.
struct Tally<'a> {
    prefix: &'a str,
    metrics: &'a Metrics,
    stats: Stats,
    frontier: Frontier,
    result: SweepResult,
}

impl Tally<'_> {
    fn scanned(&mut self, j: &Joined<Entry, Entry>) {
        if !j.left.is_empty() {
            self.stats.scanned_source += 1;
            self.metrics.sweep.key_scanned(Side::Source);
        }
        if !j.right.is_empty() {
            self.stats.scanned_target += 1;
            self.metrics.sweep.key_scanned(Side::Target);
        }
    }

    /// A decided candidate: counted, reported, and the checkpoint may pass it.
    fn settle(
        &mut self,
        (orphan, fate, on_source): (Orphan, Fate, bool),
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
    ) {
        let purged = matches!(fate, Fate::Purged { .. });
        let key = orphan.key.clone();
        self.report(orphan, fate, on_line);
        self.frontier.settled(&key, on_source, purged);
    }

    /// An orphan's fate, counted and reported.
    fn report(
        &mut self,
        orphan: Orphan,
        fate: Fate,
        on_line: &mut (dyn FnMut(&OrphanLine) + Send),
    ) {
        let (action, deleted, reason, error) = match fate {
            Fate::Purged { deleted } => (Action::Purged, deleted, None, None),
            Fate::PartlyPurged { deleted, error } => (Action::PartlyPurged, deleted, None, error),
            Fate::WouldPurge { deleted } => (Action::WouldPurge, deleted, None, None),
            Fate::Kept(r) => (Action::Kept, 0, Some(r), None),
            Fate::Failed(r, e) => (Action::Kept, 0, Some(r), Some(e)),
        };
        match (action, reason) {
            (Action::Purged, _) => self.stats.purged += 1,
            (Action::PartlyPurged, _) => self.stats.partly_purged += 1,
            (Action::WouldPurge, _) => self.stats.would_purge += 1,
            (_, Some(r)) => *self.stats.kept.entry(r).or_default() += 1,
            _ => {}
        }
        let failed = action == Action::PartlyPurged && error.is_some();
        match reason {
            Some(KeptReason::MaxDeletes) => {
                self.result = worst(self.result, SweepResult::ExceededMaxDeletes)
            }
            Some(KeptReason::AfterError | KeptReason::Failed) => {
                self.result = worst(self.result, SweepResult::StoppedAfterError)
            }
            _ if failed => self.result = worst(self.result, SweepResult::StoppedAfterError),
            _ => {}
        }
        self.metrics.sweep.orphan_resolved(
            matches!(action, Action::Purged | Action::PartlyPurged),
            action == Action::WouldPurge,
            reason,
        );
        on_line(&OrphanLine {
            prefix: self.prefix.to_string(),
            orphan,
            action,
            deleted,
            reason,
            error,
        });
    }
}

/// The fate of a decided key.
fn fate(res: Result<KeyOutcome, PurgeError>, dry: bool) -> Fate {
    match res {
        Ok(KeyOutcome::Purged { deleted, .. }) if dry => Fate::WouldPurge {
            deleted: deleted.len(),
        },
        Ok(KeyOutcome::Purged {
            deleted,
            deferred: 0,
            ..
        }) => Fate::Purged {
            deleted: deleted.len(),
        },
        Ok(KeyOutcome::Purged { deleted, .. }) => Fate::PartlyPurged {
            deleted: deleted.len(),
            error: None,
        },
        Ok(KeyOutcome::SourcePresent) => Fate::Kept(KeptReason::SourcePresent),
        Ok(KeyOutcome::NothingToPurge) => Fate::Kept(KeptReason::NothingToPurge),
        Ok(KeyOutcome::NotReplica { .. }) => Fate::Kept(KeptReason::NotReplica),
        Ok(KeyOutcome::Deferred { .. }) => Fate::Kept(KeptReason::RaceGuard),
        Ok(KeyOutcome::Refused { .. }) => Fate::Kept(KeptReason::Refused),
        Ok(KeyOutcome::TooYoung) => Fate::Kept(KeptReason::TooYoung),
        Ok(KeyOutcome::Stopped) => Fate::Kept(KeptReason::AfterError),
        Err(PurgeError::Delete { error, deleted }) if !deleted.is_empty() => Fate::PartlyPurged {
            deleted: deleted.len(),
            error: Some(error.to_string()),
        },
        Err(e) => Fate::Failed(KeptReason::Failed, e.to_string()),
    }
}

/// Whether a prefix's walk reached its end (its lease is completed).
fn lease_finished(r: SweepResult) -> bool {
    !matches!(
        r,
        SweepResult::Interrupted | SweepResult::Failed | SweepResult::Busy
    )
}

/// The more severe of two results.
fn worst(a: SweepResult, b: SweepResult) -> SweepResult {
    let rank = |r: SweepResult| match r {
        SweepResult::Completed => 0,
        SweepResult::Busy => 1,
        SweepResult::ExceededMaxDeletes => 2,
        SweepResult::StoppedAfterError => 3,
        SweepResult::Interrupted => 4,
        SweepResult::Failed => 5,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Where the walk may resume: the last key before which everything is settled, and per side
/// the last key there known to stay (a purged target key is gone, so it is no marker).
#[derive(Debug, Default)]
struct Frontier {
    /// Last key scanned, and the last keys seen on each side (candidates excluded on the
    /// target side until they are known not to be purged).
    scanned: Option<String>,
    source: Option<String>,
    target: Option<String>,
    /// Candidates in flight, in walk order: (key, source marker, target marker before it).
    pending: std::collections::VecDeque<(String, Option<String>, Option<String>)>,
    /// The checkpoint as of the last settled candidate.
    settled: Option<Checkpoint>,
}

impl Frontier {
    fn resume(from: Option<Checkpoint>) -> Self {
        let mut f = Frontier::default();
        if let Some(c) = from {
            f.scanned = Some(c.after.clone());
            f.source = c.source_marker.clone();
            f.target = c.target_marker.clone();
            f.settled = Some(c);
        }
        f
    }

    fn plain<T>(&mut self, j: &Joined<Entry, T>) {
        self.scanned = Some(j.key.clone());
        if !j.left.is_empty() {
            self.source = Some(j.key.clone());
        }
        if !j.right.is_empty() {
            self.target = Some(j.key.clone());
        }
    }

    fn candidate<T>(&mut self, j: &Joined<Entry, T>) {
        self.scanned = Some(j.key.clone());
        if !j.left.is_empty() {
            self.source = Some(j.key.clone());
        }
        self.pending
            .push_back((j.key.clone(), self.source.clone(), self.target.clone()));
    }

    /// A candidate was settled (they settle in walk order).
    fn settled(&mut self, key: &str, _on_source: bool, purged: bool) {
        if let Some((k, source, target)) = self.pending.pop_front() {
            debug_assert_eq!(k, key);
            self.settled = Some(Checkpoint {
                after: k.clone(),
                source_marker: source,
                target_marker: if purged { target } else { Some(k) },
            });
        }
    }

    /// The checkpoint to write: the scan frontier when nothing is in flight, else the last
    /// settled candidate.
    fn checkpoint(&self, idle: bool) -> Option<Checkpoint> {
        if idle && self.pending.is_empty() {
            return self.scanned.as_ref().map(|after| Checkpoint {
                after: after.clone(),
                source_marker: self.source.clone(),
                target_marker: self.target.clone(),
            });
        }
        self.settled.clone()
    }
}

/// One report line as a JSON object on one line (the `sweep` command prints it; the daemon
/// logs it).
pub(crate) fn json_line(line: &OrphanLine) -> String {
    serde_json::to_string(line).unwrap_or_default()
}

/// Kept reasons with their counts, for logs.
pub(crate) fn kept_summary(kept: &BTreeMap<KeptReason, u64>) -> String {
    kept.iter()
        .map(|(r, n)| format!("{r}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(key: &str, src: bool, tgt: bool) -> Joined<Entry, Entry> {
        let e = |k: &str| Entry {
            key: k.into(),
            version_id: "v".into(),
            delete_marker: false,
            last_modified: None,
        };
        Joined {
            key: key.into(),
            left: if src { vec![e(key)] } else { vec![] },
            right: if tgt { vec![e(key)] } else { vec![] },
            left_dropped: 0,
            right_dropped: 0,
        }
    }

    #[test]
    fn the_checkpoint_never_passes_an_undecided_orphan() {
        let mut f = Frontier::default();
        f.plain(&j("a", true, true));
        f.candidate(&j("b", false, true));
        f.plain(&j("c", true, true));
        f.candidate(&j("d", false, true));
        f.plain(&j("e", true, false));
        // b and d in flight: nothing settled yet, no checkpoint past them.
        assert_eq!(f.checkpoint(false), None);
        // b purged: resume after b; the target marker is a (b is gone), the source's a.
        f.settled("b", false, true);
        let c = f.checkpoint(false).unwrap();
        assert_eq!(c.after, "b");
        assert_eq!(
            (c.source_marker.as_deref(), c.target_marker.as_deref()),
            (Some("a"), Some("a"))
        );
        // d kept: it stays in the target and can be the target's marker.
        f.settled("d", false, false);
        let c = f.checkpoint(false).unwrap();
        assert_eq!(
            (c.after.as_str(), c.target_marker.as_deref()),
            ("d", Some("d"))
        );
        // Nothing in flight: the scan frontier, e.
        let c = f.checkpoint(true).unwrap();
        assert_eq!(c.after, "e");
        assert_eq!(
            (c.source_marker.as_deref(), c.target_marker.as_deref()),
            (Some("e"), Some("c"))
        );
    }

    #[test]
    fn severity() {
        assert_eq!(
            worst(SweepResult::Completed, SweepResult::Busy),
            SweepResult::Busy
        );
        assert_eq!(
            worst(
                SweepResult::StoppedAfterError,
                SweepResult::ExceededMaxDeletes
            ),
            SweepResult::StoppedAfterError
        );
    }
}
