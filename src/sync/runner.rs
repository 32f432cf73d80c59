//! Running one partition date: claim it, discover projects, start the executions one filter
//! at a time, follow them to the end, and record everything in the claim.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::claim::{
    self, Chunk, ChunkStep, Claim, ClaimAction, ClaimPolicy, ClaimStatus, ExecStatus, Skip,
};
use super::datasync::DataSync;
use super::plan::{self, Plan, PlanError};
use super::state::{StateError, StateStore, Stored, Written};
use crate::aws::s3::Bucket;
use crate::aws::{AwsError, Clients};
use crate::config::{Config, DATASYNC_FILTER_MAX_LEN};
use crate::health::TaskHandle;
use crate::labels::{ErrorKind, ObjectState, SyncResult, VerifyResult};
use crate::metrics::Metrics;
use crate::verify::{self, Partition, PartitionReport, Verification};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    DataSync(AwsError),
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
            SyncError::DataSync(e) | SyncError::Discover(e) | SyncError::Verify(e) => e.kind,
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
    /// The executions succeeded, but objects are still missing or of another size after
    /// `sync.max_attempts` attempts (follow-ups included).
    Incomplete {
        missing: u64,
        size_mismatched: u64,
    },
    /// Nothing to sync: no project under `sync.prefix`, or none left after the globs.
    Empty,
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

/// How following one execution ended.
enum Watch {
    Success,
    Error(String),
    Timeout,
    Lost,
    Interrupted,
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
    /// Filter length limit (DataSync's; smaller only in tests).
    pub max_filter_len: usize,
    health: Option<TaskHandle>,
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
            holder: holder_id(&config.state.holder_id),
            max_filter_len: DATASYNC_FILTER_MAX_LEN,
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
        let result = match &outcome {
            Ok(o) => o.result(),
            Err(_) => Some(SyncResult::Failed),
        };
        if let Some(r) = result {
            self.metrics.sync_run(r);
        }
        if result != Some(SyncResult::Skipped) {
            self.metrics
                .sync_duration
                .observe(started.elapsed().as_secs_f64());
        }
        if result == Some(SyncResult::Success) {
            self.metrics.sync_succeeded_at(Utc::now().timestamp());
        }
        if let Some(h) = &self.health {
            match &outcome {
                Ok(DateOutcome::Success { .. }) => h.record_success(),
                Ok(DateOutcome::Failed { reason }) => h.record_failure(reason.clone()),
                Ok(DateOutcome::TimedOut { execution_arn }) => {
                    h.record_failure(format!("execution {execution_arn} timed out"))
                }
                Ok(DateOutcome::Incomplete {
                    missing,
                    size_mismatched,
                }) => h.record_failure(format!(
                    "{date}: {missing} object(s) missing and {size_mismatched} of another size in the target after every attempt"
                )),
                Err(e) => h.record_failure(e.to_string()),
                Ok(_) => {}
            }
        }
        outcome
    }

    async fn claim_and_run(
        &self,
        date: NaiveDate,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        let s = &self.config.sync;
        let policy = ClaimPolicy {
            ttl: s.claim_ttl,
            max_attempts: s.max_attempts.get(),
            force: opts.force,
        };
        let now = Utc::now();
        let stored = self.store.get(date).await?;
        let action = claim::next_action(
            stored.as_ref().map(|s| &s.claim),
            now,
            &self.holder,
            &policy,
        );
        let mine = match (action, stored) {
            (ClaimAction::Skip(why), _) => return Ok(skipped(why)),
            (ClaimAction::Retry { attempt }, Some(prev)) => {
                let fresh = Claim {
                    created_at: prev.claim.created_at,
                    ..self.fresh_claim(date, attempt).await?
                };
                self.store.update(&fresh, &prev.etag).await?.with(fresh)
            }
            (ClaimAction::Resume, Some(prev)) => {
                info!("resuming a run this holder started before a restart");
                self.take(prev).await?
            }
            (ClaimAction::TakeOver { previous_holder }, Some(prev)) => {
                warn!(%previous_holder, "taking over a stale claim; checking its executions' real status first");
                self.take(prev).await?
            }
            // No claim to build on: create one; losing the race means someone else just did.
            _ => {
                let fresh = self.fresh_claim(date, 1).await?;
                self.store.create(&fresh).await?.with(fresh)
            }
        };
        match mine {
            Some((claim, etag)) => self.execute(claim, etag, opts, shutdown).await,
            None => Ok(skipped(Skip::ClaimedElsewhere)),
        }
    }

    /// Makes an existing running claim ours.
    async fn take(&self, prev: Stored) -> Result<Option<(Claim, String)>, SyncError> {
        let mine = Claim {
            holder: self.holder.clone(),
            updated_at: Utc::now(),
            ..prev.claim
        };
        Ok(self.store.update(&mine, &prev.etag).await?.with(mine))
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
        let now = Utc::now();
        Ok(Claim {
            date,
            status: ClaimStatus::Running,
            holder: self.holder.clone(),
            attempts,
            created_at: now,
            updated_at: now,
            window: plan.dates.clone(),
            projects: plan.projects,
            chunks: plan
                .filters
                .into_iter()
                .map(|f| Chunk::new(f, attempts))
                .collect(),
            error: None,
            verification: None,
            retry_at: None,
        })
    }

    /// Writes the claim; `false` means another runner took it over.
    async fn save(&self, claim: &mut Claim, etag: &mut String) -> Result<bool, SyncError> {
        claim.updated_at = Utc::now();
        match self.store.update(claim, etag).await? {
            Written::Ok { etag: t } => {
                *etag = t;
                Ok(true)
            }
            Written::Conflict => {
                error!("lost the claim to another runner; stopping work on this date");
                Ok(false)
            }
        }
    }

    /// Ends the claim as failed with `reason`, or as empty, and sets when it is retried.
    async fn end(
        &self,
        claim: &mut Claim,
        etag: &mut String,
        status: ClaimStatus,
        reason: String,
    ) -> Result<(), SyncError> {
        let s = &self.config.sync;
        claim.status = status;
        claim.error = Some(reason);
        claim.retry_at = claim::retry_at(
            Utc::now(),
            claim.attempts,
            s.retry_interval,
            s.max_attempts.get(),
        );
        match claim.retry_at {
            Some(at) => info!(retry_at = %at, attempt = claim.attempts, "the date will be retried"),
            None => warn!(attempts = claim.attempts, "no attempts left for the date"),
        }
        self.save(claim, etag).await.map(|_| ())
    }

    async fn fail(
        &self,
        claim: &mut Claim,
        etag: &mut String,
        reason: String,
    ) -> Result<(), SyncError> {
        self.end(claim, etag, ClaimStatus::Failed, reason).await
    }

    async fn execute(
        &self,
        mut claim: Claim,
        mut etag: String,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        let s = &self.config.sync;
        self.metrics
            .sync_filter_patterns
            .set(claim.patterns() as i64);
        if claim.chunks.is_empty() {
            let filtered = !s.include_projects.is_empty() || !s.exclude_projects.is_empty();
            let reason = format!(
                "no project under s3://{}/{}{}",
                self.config.source.bucket,
                s.prefix,
                if filtered {
                    " left after sync.include_projects and sync.exclude_projects"
                } else {
                    ""
                }
            );
            warn!(%reason, "nothing to sync for the date");
            self.end(&mut claim, &mut etag, ClaimStatus::Empty, reason)
                .await?;
            return Ok(DateOutcome::Empty);
        }
        loop {
            if let Some(ended) = self
                .run_chunks(&mut claim, &mut etag, opts, shutdown)
                .await?
            {
                return Ok(ended);
            }
            if !s.verify {
                break;
            }
            let (v, reports) = self.verify_claim(&claim).await?;
            let complete = v.complete();
            claim.verification = Some(v.clone());
            if complete {
                break;
            }
            if claim.attempts >= s.max_attempts.get() {
                let reason = format!(
                    "after {} attempt(s), {} object(s) are missing and {} of another size in the target (e.g. {})",
                    claim.attempts,
                    v.counts.missing,
                    v.counts.size_mismatched,
                    v.missing_keys.join(", ")
                );
                self.fail(&mut claim, &mut etag, reason).await?;
                return Ok(DateOutcome::Incomplete {
                    missing: v.counts.missing,
                    size_mismatched: v.counts.size_mismatched,
                });
            }
            self.add_follow_up(&mut claim, &reports)?;
            if !self.save(&mut claim, &mut etag).await? {
                return Ok(skipped(Skip::Lost));
            }
        }
        claim.status = ClaimStatus::Success;
        claim.error = None;
        claim.retry_at = None;
        self.save(&mut claim, &mut etag).await?;
        let files = claim.chunks.iter().map(|c| c.files_transferred).sum();
        let bytes = claim.chunks.iter().map(|c| c.bytes_transferred).sum();
        info!(files, bytes, chunks = claim.chunks.len(), "sync succeeded");
        Ok(DateOutcome::Success { files, bytes })
    }

    /// Starts or follows every chunk not done yet, in order. `Some` when the date ends here
    /// (an execution failed or timed out, the claim was lost, shutdown, `--no-wait`).
    async fn run_chunks(
        &self,
        claim: &mut Claim,
        etag: &mut String,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<Option<DateOutcome>, SyncError> {
        let s = &self.config.sync;
        let total = claim.chunks.len();
        for i in 0..total {
            let arn = match claim::chunk_step(&claim.chunks[i]) {
                ChunkStep::Done => continue,
                ChunkStep::Follow(arn) => arn,
                ChunkStep::Start => {
                    let started = self
                        .datasync
                        .start(
                            s.filter_mode,
                            &claim.chunks[i].filter,
                            claim.date,
                            (i + 1, total),
                        )
                        .await;
                    let arn = match started {
                        Ok(a) => a,
                        Err(e) => {
                            self.fail(claim, etag, e.to_string()).await?;
                            return Err(SyncError::DataSync(e));
                        }
                    };
                    let chunk = &mut claim.chunks[i];
                    info!(chunk = i + 1, chunks = total, execution_arn = %arn,
                          patterns = chunk.patterns, attempt = chunk.attempt, "started DataSync execution");
                    chunk.execution_arn = Some(arn.clone());
                    chunk.status = Some(ExecStatus::Started);
                    chunk.started_at = Some(Utc::now());
                    chunk.error = None;
                    if !self.save(claim, etag).await? {
                        return Ok(Some(skipped(Skip::Lost)));
                    }
                    if !opts.wait {
                        return Ok(Some(DateOutcome::Started { execution_arn: arn }));
                    }
                    arn
                }
            };
            let watched = {
                let _watching = self.metrics.execution_watched();
                self.watch(claim, etag, i, &arn, shutdown).await?
            };
            match watched {
                Watch::Success => {}
                Watch::Lost => return Ok(Some(skipped(Skip::Lost))),
                Watch::Interrupted => return Ok(Some(DateOutcome::Interrupted)),
                Watch::Error(reason) => {
                    self.fail(claim, etag, reason.clone()).await?;
                    error!(execution_arn = %arn, %reason, attempt = claim.attempts, "DataSync execution failed");
                    return Ok(Some(DateOutcome::Failed { reason }));
                }
                Watch::Timeout => {
                    if let Err(e) = self.datasync.cancel(&arn).await {
                        warn!(error = %e, "could not cancel the timed-out execution");
                    }
                    let reason = format!(
                        "execution {arn} did not finish within {}",
                        humantime::format_duration(s.timeout)
                    );
                    self.fail(claim, etag, reason).await?;
                    return Ok(Some(DateOutcome::TimedOut { execution_arn: arn }));
                }
            }
        }
        Ok(None)
    }

    /// Compares every partition the claim's filters selected, each against the start of the
    /// latest execution that covered it (objects written later are late, not missing).
    async fn verify_claim(
        &self,
        claim: &Claim,
    ) -> Result<(Verification, Vec<PartitionReport>), SyncError> {
        let s = &self.config.sync;
        let mut parts: Vec<(Partition, Option<DateTime<Utc>>)> = Vec::new();
        for chunk in &claim.chunks {
            for p in plan::partitions_of(s, &claim.window, [chunk.filter.as_str()]) {
                match parts.iter_mut().find(|(q, _)| q.prefix == p.prefix) {
                    Some((_, at)) => *at = (*at).max(chunk.started_at),
                    None => parts.push((p, chunk.started_at)),
                }
            }
        }
        let reports = match verify::partitions(&self.source, &self.target, &parts).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.sync_verified(VerifyResult::Failed, &[]);
                return Err(SyncError::Verify(e));
            }
        };
        let latest_attempt = claim.chunks.iter().map(|c| c.attempt).max().unwrap_or(1);
        let files: i64 = claim
            .chunks
            .iter()
            .filter(|c| c.attempt == latest_attempt)
            .map(|c| c.files_transferred)
            .sum();
        let v = Verification::summarize(&reports, Some(files));
        let c = v.counts;
        let result = if v.complete() {
            VerifyResult::Complete
        } else {
            VerifyResult::Incomplete
        };
        self.metrics.sync_verified(
            result,
            &[
                (ObjectState::Expected, c.expected),
                (ObjectState::Present, c.present),
                (ObjectState::Missing, c.missing),
                (ObjectState::SizeMismatched, c.size_mismatched),
                (ObjectState::Extra, c.extra),
                (ObjectState::Late, c.late),
            ],
        );
        if v.transferred_nothing && !v.complete() {
            warn!(
                expected = c.expected,
                missing = c.missing,
                "DataSync reported SUCCESS with 0 files transferred while the source partitions hold objects; check the task's locations, subdirectories and filters (s3-reconciler doctor)"
            );
        }
        if v.complete() {
            info!(
                partitions = v.partitions,
                expected = c.expected,
                present = c.present,
                extra = c.extra,
                late = c.late,
                "verified: every object is in the target"
            );
        } else {
            warn!(partitions = v.partitions, incomplete = v.incomplete_partitions,
                  expected = c.expected, missing = c.missing, size_mismatched = c.size_mismatched,
                  examples = ?v.missing_keys, "verification found objects missing from the target");
        }
        if let Some(h) = &self.health {
            let mut detail = serde_json::to_value(&v).unwrap_or_default();
            detail["date"] = serde_json::json!(claim.date);
            h.set_detail("last_verification", detail);
        }
        Ok((v, reports))
    }

    /// Adds chunks whose Includes cover only the partitions the last verification found
    /// incomplete: the next attempt.
    fn add_follow_up(
        &self,
        claim: &mut Claim,
        reports: &[PartitionReport],
    ) -> Result<(), SyncError> {
        let incomplete: Vec<String> = reports
            .iter()
            .filter(|r| !r.complete())
            .map(|r| r.pattern.clone())
            .collect();
        let filters =
            plan::chunk(&incomplete, self.max_filter_len).map_err(|source| SyncError::Plan {
                date: claim.date,
                source,
            })?;
        claim.attempts += 1;
        info!(
            partitions = incomplete.len(),
            filters = filters.len(),
            attempt = claim.attempts,
            "follow-up execution for the incomplete partitions"
        );
        claim
            .chunks
            .extend(filters.into_iter().map(|f| Chunk::new(f, claim.attempts)));
        Ok(())
    }

    /// Follows chunk `i`'s execution to its end, refreshing the claim on every poll (the
    /// heartbeat that keeps it from going stale).
    async fn watch(
        &self,
        claim: &mut Claim,
        etag: &mut String,
        i: usize,
        arn: &str,
        shutdown: &CancellationToken,
    ) -> Result<Watch, SyncError> {
        let s = &self.config.sync;
        let watching_since = Utc::now();
        let tracked = self
            .health
            .as_ref()
            .map(|h| h.track("DescribeTaskExecution", arn));
        let mut unknown_logged = false;
        // The clock runs from the execution's start, also for a runner that resumes
        // following it: DataSync's StartTime when it says, else the start recorded in the
        // claim, else now.
        let mut started_at = claim.chunks[i].started_at;
        loop {
            match self.datasync.describe(arn).await {
                Ok(ex) => {
                    if let Some(t) = &tracked {
                        t.progress();
                    }
                    started_at = ex.started_at.or(started_at);
                    let chunk = &mut claim.chunks[i];
                    chunk.status = Some(ex.status.clone());
                    if ex.started_at.is_some() {
                        chunk.started_at = ex.started_at;
                    }
                    match &ex.status {
                        ExecStatus::Success => {
                            chunk.files_transferred = ex.files_transferred;
                            chunk.bytes_transferred = ex.bytes_transferred;
                            self.metrics
                                .sync_transferred(ex.files_transferred, ex.bytes_transferred);
                            if !self.save(claim, etag).await? {
                                return Ok(Watch::Lost);
                            }
                            return Ok(Watch::Success);
                        }
                        ExecStatus::Error => {
                            let (code, detail) = ex.error.unwrap_or_default();
                            let reason = format!("{code}: {detail}");
                            chunk.error = Some(reason.clone());
                            return Ok(Watch::Error(reason));
                        }
                        ExecStatus::Unknown(raw) if !unknown_logged => {
                            warn!(execution_arn = %arn, status = %raw, "unknown DataSync status; treating it as still running");
                            unknown_logged = true;
                        }
                        _ => {}
                    }
                }
                // A slow or throttled API is no reason to abandon an execution that runs on.
                Err(e) if e.is_transient() => {
                    warn!(error = %e, "could not read the execution's status; will try again");
                }
                Err(e) => return Err(SyncError::DataSync(e)),
            }
            if !self.save(claim, etag).await? {
                return Ok(Watch::Lost);
            }
            let since = started_at.unwrap_or(watching_since);
            if (Utc::now() - since).to_std().unwrap_or_default() >= s.timeout {
                return Ok(Watch::Timeout);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(Watch::Interrupted),
                _ = tokio::time::sleep(s.poll_interval) => {}
            }
        }
    }
}

/// A conditional write's result, with the claim it wrote.
trait WrittenExt {
    fn with(self, claim: Claim) -> Option<(Claim, String)>;
}

impl WrittenExt for Written {
    fn with(self, claim: Claim) -> Option<(Claim, String)> {
        match self {
            Written::Ok { etag } => Some((claim, etag)),
            Written::Conflict => None,
        }
    }
}

fn skipped(why: Skip) -> DateOutcome {
    info!(reason = %why, "sync date skipped");
    DateOutcome::Skipped {
        reason: why.to_string(),
    }
}

/// The configured holder id, else the pod/host name (stable across container restarts, so a
/// restarted daemon resumes its own executions at once), else a random id.
pub fn holder_id(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| format!("s3-reconciler-{}", uuid::Uuid::new_v4()))
}
