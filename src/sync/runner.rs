//! Running one partition date: read its claim, take the DataSync task's lock and the claim,
//! run the executions ([`execution`](super::execution)), verify ([`verification`]
//! (super::verification)), and record everything in the claim.
//!
//! Whatever stops a date midway is recorded: a failure counts an attempt and sets a retry
//! time; where it cannot be known whether an execution started (a lost answer, a listing
//! that failed), the claim stays running and goes stale after `claim_ttl`, and whoever looks
//! next finds the execution by its start token before starting anything.

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::claim::{self, Chunk, Claim, ClaimAction, ClaimPolicy, ClaimStatus, Skip};
use super::plan::{self, Plan, PlanError};
use super::state::{Held, StateError, StateStore, Stored};
use super::tasklock::{self, LockAction, TaskLock};
use crate::aws::datasync::DataSync;
use crate::aws::s3::Bucket;
use crate::aws::{AwsError, Clients};
use crate::clock::SharedClock;
use crate::config::{Config, DATASYNC_FILTER_MAX_LEN};
use crate::health::TaskHandle;
use crate::labels::{ErrorKind, SyncResult};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    DataSync(AwsError),
    /// It cannot be known whether an execution was started (its start's answer was lost, and
    /// so was the listing that would have found it): the claim stays running and is looked at
    /// again once it goes stale.
    #[error("cannot tell whether an execution was started: {0}")]
    Unsure(AwsError),
    #[error("listing projects: {0}")]
    Discover(AwsError),
    #[error("planning {date}: {source}")]
    Plan {
        date: NaiveDate,
        #[source]
        source: PlanError,
    },
    #[error("verifying: {0}")]
    Verify(AwsError),
}

impl SyncError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SyncError::State(e) => e.kind(),
            SyncError::DataSync(e)
            | SyncError::Unsure(e)
            | SyncError::Discover(e)
            | SyncError::Verify(e) => e.kind,
            SyncError::Plan { .. } => ErrorKind::Invalid,
        }
    }
}

/// How one date ended for this runner. Serialized as `{"result": label, ...fields}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DateOutcome {
    Success {
        files: i64,
        bytes: i64,
    },
    /// An execution ended in ERROR (code and detail from DataSync).
    #[serde(rename = "error")]
    Failed {
        reason: String,
    },
    #[serde(rename = "timeout")]
    TimedOut {
        execution_arn: String,
    },
    /// The executions succeeded, but objects are still missing, of another size or late
    /// after `sync.max_attempts` attempts (follow-ups included).
    Incomplete {
        missing: u64,
        size_mismatched: u64,
        late: u64,
    },
    /// Nothing to sync: no project under `sync.prefix`, none left after the globs, or every
    /// partition empty (the writer is late).
    Empty,
    /// Every object was there except some written after their execution started: a
    /// follow-up runs at the claim's retry time, then the date is verified again.
    Late {
        objects: u64,
    },
    /// Nothing done; the reason says why (already synced, claimed elsewhere, gave up).
    Skipped {
        reason: String,
    },
    /// `--no-wait`: the first execution was started and not followed.
    Started {
        execution_arn: String,
    },
    /// Shutdown while following an execution; the claim stays with this holder to resume.
    Interrupted,
}

impl DateOutcome {
    /// The run's result for `sync_runs_total`; `None` while it is still going on elsewhere.
    pub fn result(&self) -> Option<SyncResult> {
        match self {
            DateOutcome::Success { .. } => Some(SyncResult::Success),
            DateOutcome::Failed { .. } => Some(SyncResult::Error),
            DateOutcome::TimedOut { .. } => Some(SyncResult::Timeout),
            DateOutcome::Incomplete { .. } => Some(SyncResult::Incomplete),
            DateOutcome::Empty => Some(SyncResult::Empty),
            DateOutcome::Late { .. } => Some(SyncResult::Late),
            DateOutcome::Skipped { .. } => Some(SyncResult::Skipped),
            DateOutcome::Started { .. } | DateOutcome::Interrupted => None,
        }
    }

    /// The outcome as a JSON object for `/status` and command output, with `date` added.
    pub fn to_json(&self, date: NaiveDate) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("date".into(), serde_json::json!(date));
        }
        v
    }
}

/// Options of one date run.
#[derive(Debug, Clone, Copy)]
pub struct RunOpts {
    /// Manual runs re-run a date already synced or given up.
    pub force: bool,
    /// Follow the executions to their end.
    pub wait: bool,
}

/// What a runner holds while it works on a date: the claim and the task's lock.
pub(crate) struct Hold {
    pub claim: Held<Claim>,
    pub lock: Held<TaskLock>,
}

/// Everything needed to sync dates.
#[derive(Clone)]
pub struct Syncer {
    pub config: Arc<Config>,
    pub source: Bucket,
    pub target: Bucket,
    pub datasync: DataSync,
    pub store: StateStore,
    pub metrics: Metrics,
    /// Identity written into claims; stable across restarts of the same pod.
    pub holder: String,
    /// This process, among those that may share `holder` (a restart, a `kubectl exec`).
    pub nonce: String,
    /// Filter length limit (DataSync's; smaller only in tests).
    pub max_filter_len: usize,
    pub clock: SharedClock,
    pub(crate) health: Option<TaskHandle>,
}

impl Syncer {
    /// Claims live in the state bucket, reached with the source account's client.
    pub fn new(config: Arc<Config>, clients: &Clients, metrics: Metrics) -> Self {
        let store = StateStore::new(
            clients.source.clone(),
            &config.state.bucket,
            &config.state.prefix,
            metrics.clone(),
        );
        Syncer {
            source: Bucket::new(
                clients.source.clone(),
                &config.source.bucket,
                metrics.clone(),
            ),
            target: Bucket::new(
                clients.target.clone(),
                &config.target.bucket,
                metrics.clone(),
            ),
            datasync: DataSync::new(
                clients.datasync.clone(),
                &config.sync.task_arn,
                metrics.clone(),
            ),
            holder: crate::context::holder_id(&config.state.holder_id),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            max_filter_len: DATASYNC_FILTER_MAX_LEN,
            clock: SharedClock::default(),
            health: None,
            config,
            store,
            metrics,
        }
    }

    /// Reports outcomes and in-flight watches to the task's health entry.
    pub(crate) fn with_health(mut self, handle: TaskHandle) -> Self {
        self.health = Some(handle);
        self
    }

    /// Runs on `clock` (the simulation's runs days in minutes).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Project prefixes (`topics/project1/`) under `sync.prefix` in the *source* bucket, all
    /// pages, filtered by the include/exclude globs, sorted.
    pub async fn discover(&self) -> Result<Vec<String>, SyncError> {
        let s = &self.config.sync;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .source
                .list_objects(&s.prefix, Some("/"), token.take())
                .await
                .map_err(SyncError::Discover)?;
            for p in page.prefixes {
                let name = p
                    .strip_prefix(s.prefix.as_str())
                    .unwrap_or(&p)
                    .trim_end_matches('/');
                if plan::project_selected(name, &s.include_projects, &s.exclude_projects) {
                    out.push(p.clone());
                }
            }
            match page.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Discovery plus rendering and chunking for `date` and its lookback window.
    pub async fn plan(&self, date: NaiveDate) -> Result<Plan, SyncError> {
        let projects = self.discover().await?;
        let dates = plan::window(date, self.config.sync.lookback_days);
        plan::build_plan(&self.config.sync, &projects, &dates, self.max_filter_len)
            .map_err(|source| SyncError::Plan { date, source })
    }

    /// Runs `date` to its end (or to the first started execution with `wait = false`).
    pub async fn run_date(
        &self,
        date: NaiveDate,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        let started = Instant::now();
        let outcome = self
            .claim_and_run(date, opts, shutdown)
            .instrument(info_span!("date", %date))
            .await;
        self.record(date, &outcome, started);
        outcome
    }

    /// Counts and reports how a date ended.
    fn record(&self, date: NaiveDate, outcome: &Result<DateOutcome, SyncError>, started: Instant) {
        let result = match outcome {
            Ok(o) => o.result(),
            Err(_) => Some(SyncResult::Failed),
        };
        self.metrics
            .sync
            .date_ended(result, started.elapsed().as_secs_f64());
        if result == Some(SyncResult::Success) {
            self.metrics.sync.succeeded_at(self.clock.now().timestamp());
        }
        let Some(h) = &self.health else { return };
        match outcome {
            Ok(DateOutcome::Success { .. }) => h.record_success(),
            Ok(DateOutcome::Failed { reason }) => h.record_failure(reason.clone()),
            Ok(DateOutcome::TimedOut { execution_arn }) => {
                h.record_failure(format!("execution {execution_arn} timed out"))
            }
            Ok(DateOutcome::Incomplete {
                missing,
                size_mismatched,
                late,
            }) => h.record_failure(format!(
                "{date}: {missing} object(s) missing, {size_mismatched} of another size and {late} late in the target after every attempt"
            )),
            Err(e) => h.record_failure(e.to_string()),
            Ok(_) => {}
        }
    }

    async fn claim_and_run(
        &self,
        date: NaiveDate,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        let s = &self.config.sync;
        let policy = ClaimPolicy {
            nonce: &self.nonce,
            ttl: s.claim_ttl,
            max_attempts: s.max_attempts.get(),
            force: opts.force,
        };
        let now = self.clock.now();
        let stored = self.store.get(date).await?;
        let action = claim::next_action(
            stored.as_ref().map(|s| &s.value),
            now,
            &self.holder,
            &policy,
        );
        if let ClaimAction::Skip(why) = action {
            return Ok(skipped(why));
        }
        let Some(lock) = self.take_task(date, opts, shutdown).await? else {
            return Ok(DateOutcome::Interrupted);
        };
        let mut lock = match lock {
            Ok(lock) => lock,
            Err(busy) => return Ok(skipped(busy)),
        };
        // The claim may have moved on while the task was busy: decide again.
        let claimed = match self.store.get(date).await {
            Ok(stored) => {
                let now = self.clock.now();
                match claim::next_action(
                    stored.as_ref().map(|s| &s.value),
                    now,
                    &self.holder,
                    &policy,
                ) {
                    ClaimAction::Skip(why) => Ok(Err(why)),
                    action => self.take_claim(date, action, stored).await.map(Ok),
                }
            }
            Err(e) => Err(e.into()),
        };
        let claim = match claimed {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => {
                self.release(&mut lock).await;
                return Ok(skipped(Skip::ClaimedElsewhere));
            }
            Ok(Err(why)) => {
                self.release(&mut lock).await;
                return Ok(skipped(why));
            }
            Err(e) => {
                self.release(&mut lock).await;
                return Err(e);
            }
        };
        let mut hold = Hold { claim, lock };
        let outcome = self.execute(&mut hold, opts, shutdown).await;
        match &outcome {
            // The claim says it all already, or must stay as it is: running, with its start
            // token, for whoever looks next (after claim_ttl) to find the execution.
            Ok(_) | Err(SyncError::Unsure(_)) | Err(SyncError::State(_)) => {}
            Err(e) => self.fail(&mut hold, e.to_string()).await,
        }
        if !matches!(
            outcome,
            Ok(DateOutcome::Started { .. }) | Err(SyncError::Unsure(_))
        ) {
            self.release(&mut hold.lock).await;
        }
        outcome
    }

    /// Takes the DataSync task's lock for `date`, waiting while another runner has it (it
    /// releases it when its date ends, or it goes stale after `claim_ttl`). A run that does not
    /// wait (`--no-wait`) is told who has it instead. `None` on shutdown.
    async fn take_task(
        &self,
        date: NaiveDate,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<Option<Result<Held<TaskLock>, Skip>>, SyncError> {
        let s = &self.config.sync;
        let mut logged = false;
        loop {
            let taken = tasklock::acquire(
                self.store.documents(),
                &self.datasync.task_arn,
                &self.holder,
                &self.nonce,
                date,
                self.clock.now(),
                s.claim_ttl,
            )
            .await?;
            let (holder, busy_date) = match taken {
                Ok(lock) => return Ok(Some(Ok(lock))),
                Err(LockAction::Busy { holder, date, .. }) => (holder, date),
                Err(LockAction::Take) => ("another runner".to_string(), date),
            };
            if !opts.wait {
                return Ok(Some(Err(Skip::TaskBusy {
                    holder,
                    date: busy_date,
                })));
            }
            if !logged {
                info!(%holder, busy_date = %busy_date, "the DataSync task is busy with another date; waiting for it");
                logged = true;
            }
            if let Some(h) = &self.health {
                h.touch();
            }
            let slept = shutdown.run_until_cancelled(self.clock.sleep(s.poll_interval));
            if slept.await.is_none() {
                return Ok(None);
            }
        }
    }

    /// Makes the claim ours as `action` says: a fresh plan (create, retry), or the existing
    /// running or late claim (resume, take over, follow up). `None` when another runner
    /// wrote it first.
    async fn take_claim(
        &self,
        date: NaiveDate,
        action: ClaimAction,
        stored: Option<Stored<Claim>>,
    ) -> Result<Option<Held<Claim>>, SyncError> {
        let (attempt, prev) = match (action, stored) {
            (ClaimAction::Retry { attempt }, Some(prev)) => (attempt, Some(prev)),
            (ClaimAction::Resume | ClaimAction::FollowUp, Some(prev)) => {
                info!("resuming the date's claim");
                return self.take(prev).await;
            }
            (ClaimAction::TakeOver { previous_holder }, Some(prev)) => {
                warn!(%previous_holder, "taking over a stale claim; its executions are found and followed first");
                return self.take(prev).await;
            }
            (_, prev) => (1, prev),
        };
        let created_at = prev
            .as_ref()
            .map_or_else(|| self.clock.now(), |p| p.value.created_at);
        let mut fresh = match self.fresh_claim(date, attempt).await {
            Ok(c) => c,
            // The plan failed: the attempt counts, and is retried later.
            Err(e) => {
                let mut failed = self.new_claim(date, attempt, Vec::new(), Vec::new(), 0);
                failed.created_at = created_at;
                self.end_claim(&mut failed, ClaimStatus::Failed, e.to_string());
                let _ = match prev {
                    Some(p) => self.store.replace(failed, &p.etag).await?,
                    None => self.store.create(failed).await?,
                };
                return Err(e);
            }
        };
        fresh.created_at = created_at;
        Ok(match prev {
            Some(p) => self.store.replace(fresh, &p.etag).await?,
            None => self.store.create(fresh).await?,
        })
    }

    /// Makes an existing claim ours (running, this holder and process).
    async fn take(&self, prev: Stored<Claim>) -> Result<Option<Held<Claim>>, SyncError> {
        let mine = Claim {
            holder: self.holder.clone(),
            holder_nonce: self.nonce.clone(),
            status: ClaimStatus::Running,
            updated_at: self.clock.now(),
            ..prev.value
        };
        Ok(self.store.replace(mine, &prev.etag).await?)
    }

    fn new_claim(
        &self,
        date: NaiveDate,
        attempts: u32,
        window: Vec<NaiveDate>,
        filters: Vec<String>,
        projects: usize,
    ) -> Claim {
        let now = self.clock.now();
        Claim {
            date,
            status: ClaimStatus::Running,
            holder: self.holder.clone(),
            holder_nonce: self.nonce.clone(),
            stamp: String::new(),
            attempts,
            created_at: now,
            updated_at: now,
            window,
            projects,
            chunks: filters
                .into_iter()
                .map(|f| Chunk::new(f, attempts))
                .collect(),
            error: None,
            verification: None,
            retry_at: None,
        }
    }

    async fn fresh_claim(&self, date: NaiveDate, attempts: u32) -> Result<Claim, SyncError> {
        let plan = self.plan(date).await?;
        info!(
            projects = plan.projects,
            patterns = plan.patterns,
            filters = plan.filters.len(),
            attempt = attempts,
            "planned sync"
        );
        Ok(self.new_claim(date, attempts, plan.dates, plan.filters, plan.projects))
    }

    /// Writes the claim and refreshes the task's lock; `false` when either was lost to
    /// another runner (stop: it is theirs now).
    pub(crate) async fn save(&self, hold: &mut Hold) -> Result<bool, SyncError> {
        let now = self.clock.now();
        hold.claim.value.updated_at = now;
        hold.lock.value.updated_at = now;
        if !hold.claim.save().await? {
            warn!("lost the claim to another runner; stopping work on this date");
            return Ok(false);
        }
        if !hold.lock.save().await? {
            warn!("lost the DataSync task's lock to another runner; stopping work on this date");
            return Ok(false);
        }
        Ok(true)
    }

    /// Sets a failed or empty claim's status, reason and retry time (pure bookkeeping).
    fn end_claim(&self, claim: &mut Claim, status: ClaimStatus, reason: String) {
        let s = &self.config.sync;
        claim.status = status;
        claim.error = Some(reason);
        claim.retry_at = claim::retry_at(
            self.clock.now(),
            claim.attempts,
            s.retry_interval,
            s.max_attempts.get(),
        );
        match claim.retry_at {
            Some(at) => info!(retry_at = %at, attempt = claim.attempts, "the date will be retried"),
            None => warn!(attempts = claim.attempts, "no attempts left for the date"),
        }
    }

    /// Ends the claim as failed or empty with `reason`, and sets when it is retried. `false`
    /// when the claim was lost meanwhile.
    pub(crate) async fn end(
        &self,
        hold: &mut Hold,
        status: ClaimStatus,
        reason: String,
    ) -> Result<bool, SyncError> {
        self.end_claim(&mut hold.claim.value, status, reason);
        self.save(hold).await
    }

    /// Fails the claim with `reason` (best effort: on an error the claim stays running and
    /// goes stale).
    pub(crate) async fn fail(&self, hold: &mut Hold, reason: String) {
        if let Err(e) = self.end(hold, ClaimStatus::Failed, reason).await {
            warn!(error = %e, "could not record the failure in the claim; it goes stale and is taken over");
        }
    }

    /// Lets go of the task's lock (best effort: it goes stale otherwise).
    async fn release(&self, lock: &mut Held<TaskLock>) {
        lock.value.released = true;
        lock.value.updated_at = self.clock.now();
        if let Err(e) = lock.save().await {
            warn!(error = %e, "could not release the DataSync task's lock; it goes stale");
        }
    }
}

pub(crate) fn skipped(why: Skip) -> DateOutcome {
    info!(reason = %why, "sync date skipped");
    DateOutcome::Skipped {
        reason: why.to_string(),
    }
}
