//! Running one partition date: claim it, discover projects, start the executions one filter
//! at a time, follow them to the end, and record everything in the claim.

use std::sync::Arc;
use std::time::Instant;

use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::datasync::{self, DataSyncError, Phase};
use super::plan::{self, Plan};
use super::state::{Chunk, Claim, ClaimStatus, StateError, StateStore, Stored, Written};
use crate::config::{Config, DATASYNC_FILTER_MAX_LEN};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    DataSync(#[from] DataSyncError),
    #[error("listing projects under s3://{bucket}/{prefix}: {reason}")]
    Discover {
        bucket: String,
        prefix: String,
        reason: String,
    },
    #[error("planning {date}: {reason}")]
    Plan { date: NaiveDate, reason: String },
}

/// How one date ended for this runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateOutcome {
    Success {
        files: i64,
        bytes: i64,
    },
    /// An execution ended in ERROR (code and detail from DataSync).
    Failed {
        reason: String,
    },
    TimedOut {
        execution_arn: String,
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
    pub fn label(&self) -> &'static str {
        match self {
            DateOutcome::Success { .. } => "success",
            DateOutcome::Failed { .. } => "error",
            DateOutcome::TimedOut { .. } => "timeout",
            DateOutcome::Skipped { .. } => "skipped",
            DateOutcome::Started { .. } | DateOutcome::Interrupted => "started",
        }
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

/// Everything needed to sync dates.
#[derive(Clone)]
pub struct Syncer {
    pub config: Arc<Config>,
    pub source: aws_sdk_s3::Client,
    pub datasync: aws_sdk_datasync::Client,
    pub store: StateStore,
    pub metrics: Metrics,
    /// Identity written into claims; stable across restarts of the same pod.
    pub holder: String,
    /// Filter length limit (DataSync's; smaller only in tests).
    pub max_filter_len: usize,
}

impl Syncer {
    pub fn new(
        config: Arc<Config>,
        source: aws_sdk_s3::Client,
        state_client: aws_sdk_s3::Client,
        datasync: aws_sdk_datasync::Client,
        metrics: Metrics,
    ) -> Self {
        let store = StateStore::new(
            state_client,
            &config.state.bucket,
            &config.state.prefix,
            metrics.clone(),
        );
        let holder = holder_id(&config.state.holder_id);
        Syncer {
            config,
            source,
            datasync,
            store,
            metrics,
            holder,
            max_filter_len: DATASYNC_FILTER_MAX_LEN,
        }
    }

    /// Project prefixes (`topics/project1/`) under `sync.prefix` in the *source* bucket, all
    /// pages, filtered by the include/exclude globs, sorted.
    pub async fn discover(&self) -> Result<Vec<String>, SyncError> {
        let s = &self.config.sync;
        let bucket = &self.config.source.bucket;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.metrics.s3_request("ListObjectsV2");
            let page = self
                .source
                .list_objects_v2()
                .bucket(bucket)
                .prefix(&s.prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| SyncError::Discover {
                    bucket: bucket.clone(),
                    prefix: s.prefix.clone(),
                    reason: DisplayErrorContext(&e).to_string(),
                })?;
            for cp in page.common_prefixes() {
                let Some(p) = cp.prefix() else { continue };
                let name = p
                    .strip_prefix(s.prefix.as_str())
                    .unwrap_or(p)
                    .trim_end_matches('/');
                if plan::project_selected(name, &s.include_projects, &s.exclude_projects) {
                    out.push(p.to_string());
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
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
            .map_err(|reason| SyncError::Plan { date, reason })
    }

    /// Runs `date` to its end (or to the first started execution with `wait = false`).
    pub async fn run_date(
        &self,
        date: NaiveDate,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        let started = Instant::now();
        let outcome = self.claim_and_run(date, opts, shutdown).await;
        let label = match &outcome {
            Ok(o) => o.label(),
            Err(_) => "failed",
        };
        if !matches!(
            outcome,
            Ok(DateOutcome::Started { .. } | DateOutcome::Interrupted)
        ) {
            self.metrics.sync_runs.with_label_values(&[label]).inc();
        }
        if let Ok(DateOutcome::Success { .. }) = &outcome {
            self.metrics.sync_last_success.set(Utc::now().timestamp());
        }
        if !matches!(outcome, Ok(DateOutcome::Skipped { .. })) {
            self.metrics
                .sync_duration
                .observe(started.elapsed().as_secs_f64());
        }
        outcome
    }

    async fn claim_and_run(
        &self,
        date: NaiveDate,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        let max_attempts = self.config.sync.max_attempts;
        let now = Utc::now();
        let (claim, etag) = match self.store.get(date).await? {
            None => {
                let claim = self.fresh_claim(date, 1).await?;
                match self.store.create(&claim).await? {
                    Written::Ok(etag) => (claim, etag),
                    Written::Conflict => {
                        return Ok(skipped(date, "claimed by another runner"));
                    }
                }
            }
            Some(Stored { claim, etag }) => match claim.status {
                ClaimStatus::Success if !opts.force => {
                    return Ok(skipped(date, "already synced"));
                }
                ClaimStatus::Failed if claim.attempts >= max_attempts && !opts.force => {
                    return Ok(skipped(
                        date,
                        &format!("gave up after {} attempt(s)", claim.attempts),
                    ));
                }
                ClaimStatus::Success | ClaimStatus::Failed => {
                    let fresh = self.fresh_claim(date, claim.attempts + 1).await?;
                    let fresh = Claim {
                        created_at: claim.created_at,
                        ..fresh
                    };
                    match self.store.update(&fresh, &etag).await? {
                        Written::Ok(etag) => (fresh, etag),
                        Written::Conflict => return Ok(skipped(date, "claimed by another runner")),
                    }
                }
                ClaimStatus::Running => {
                    let stale = now
                        .signed_duration_since(claim.updated_at)
                        .to_std()
                        .unwrap_or_default()
                        > self.config.sync.claim_ttl;
                    if claim.holder != self.holder && !stale {
                        return Ok(skipped(date, &format!("being synced by {}", claim.holder)));
                    }
                    if claim.holder == self.holder {
                        info!(%date, "resuming a run this holder started before a restart");
                    } else {
                        warn!(%date, previous_holder = %claim.holder, "taking over a stale claim; checking its executions' real status first");
                    }
                    let mine = Claim {
                        holder: self.holder.clone(),
                        updated_at: now,
                        ..claim
                    };
                    match self.store.update(&mine, &etag).await? {
                        Written::Ok(etag) => (mine, etag),
                        Written::Conflict => return Ok(skipped(date, "claimed by another runner")),
                    }
                }
            },
        };
        self.execute(claim, etag, opts, shutdown).await
    }

    async fn fresh_claim(&self, date: NaiveDate, attempts: u32) -> Result<Claim, SyncError> {
        let plan = self.plan(date).await?;
        self.metrics.sync_filter_patterns.set(plan.patterns as i64);
        info!(%date, projects = plan.projects, patterns = plan.patterns, filters = plan.filters.len(), attempt = attempts, "planned sync");
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
                .iter()
                .map(|f| Chunk {
                    filter: f.clone(),
                    patterns: f.split('|').count(),
                    execution_arn: None,
                    status: None,
                    files_transferred: 0,
                    bytes_transferred: 0,
                    error: None,
                })
                .collect(),
            error: None,
        })
    }

    /// Writes the claim; a conflict means another runner took it over.
    async fn save(&self, claim: &mut Claim, etag: &mut String) -> Result<bool, SyncError> {
        claim.updated_at = Utc::now();
        match self.store.update(claim, etag).await? {
            Written::Ok(t) => {
                *etag = t;
                Ok(true)
            }
            Written::Conflict => {
                error!(date = %claim.date, "lost the claim to another runner; stopping work on this date");
                Ok(false)
            }
        }
    }

    async fn execute(
        &self,
        mut claim: Claim,
        mut etag: String,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        let s = &self.config.sync;
        let date = claim.date;
        let total = claim.chunks.len();
        if total == 0 {
            claim.status = ClaimStatus::Success;
            self.save(&mut claim, &mut etag).await?;
            info!(%date, "no project partitions to sync");
            return Ok(DateOutcome::Success { files: 0, bytes: 0 });
        }
        for i in 0..total {
            if claim.chunks[i].status.as_deref() == Some("SUCCESS") {
                continue;
            }
            let resumable = claim.chunks[i].execution_arn.is_some()
                && claim.chunks[i].status.as_deref() != Some("ERROR");
            if !resumable {
                let arn = datasync::start(
                    &self.datasync,
                    &s.task_arn,
                    s.filter_mode,
                    &claim.chunks[i].filter,
                    date,
                    (i + 1, total),
                )
                .await;
                let arn = match arn {
                    Ok(a) => a,
                    Err(e) => {
                        claim.status = ClaimStatus::Failed;
                        claim.error = Some(e.to_string());
                        self.save(&mut claim, &mut etag).await?;
                        return Err(e.into());
                    }
                };
                info!(%date, chunk = i + 1, chunks = total, execution_arn = %arn, patterns = claim.chunks[i].patterns, "started DataSync execution");
                claim.chunks[i].execution_arn = Some(arn.clone());
                claim.chunks[i].status = Some("STARTED".into());
                claim.chunks[i].error = None;
                if !self.save(&mut claim, &mut etag).await? {
                    return Ok(skipped(date, "claim lost"));
                }
                if !opts.wait {
                    return Ok(DateOutcome::Started { execution_arn: arn });
                }
            }
            let arn = claim.chunks[i].execution_arn.clone().unwrap_or_default();
            self.metrics.sync_executions_in_progress.inc();
            let res = self.watch(&mut claim, &mut etag, i, &arn, shutdown).await;
            self.metrics.sync_executions_in_progress.dec();
            match res? {
                Watch::Success => {}
                Watch::Lost => return Ok(skipped(date, "claim lost")),
                Watch::Interrupted => return Ok(DateOutcome::Interrupted),
                Watch::Error(reason) => {
                    claim.status = ClaimStatus::Failed;
                    claim.error = Some(reason.clone());
                    self.save(&mut claim, &mut etag).await?;
                    error!(%date, execution_arn = %arn, %reason, attempt = claim.attempts, "DataSync execution failed");
                    return Ok(DateOutcome::Failed { reason });
                }
                Watch::Timeout => {
                    if let Err(e) = datasync::cancel(&self.datasync, &arn).await {
                        warn!(error = %e, "could not cancel the timed-out execution");
                    }
                    claim.status = ClaimStatus::Failed;
                    claim.error = Some(format!(
                        "execution {arn} did not finish within {}",
                        humantime::format_duration(s.timeout)
                    ));
                    self.save(&mut claim, &mut etag).await?;
                    return Ok(DateOutcome::TimedOut { execution_arn: arn });
                }
            }
        }
        claim.status = ClaimStatus::Success;
        claim.error = None;
        self.save(&mut claim, &mut etag).await?;
        let files = claim.chunks.iter().map(|c| c.files_transferred).sum();
        let bytes = claim.chunks.iter().map(|c| c.bytes_transferred).sum();
        info!(%date, files, bytes, chunks = total, "sync succeeded");
        Ok(DateOutcome::Success { files, bytes })
    }

    async fn watch(
        &self,
        claim: &mut Claim,
        etag: &mut String,
        i: usize,
        arn: &str,
        shutdown: &CancellationToken,
    ) -> Result<Watch, SyncError> {
        let s = &self.config.sync;
        let begun = Instant::now();
        let mut unknown_logged = false;
        loop {
            let st = datasync::describe(&self.datasync, arn).await?;
            let chunk = &mut claim.chunks[i];
            chunk.status = Some(st.raw.clone());
            match &st.phase {
                Phase::Success => {
                    chunk.files_transferred = st.files_transferred;
                    chunk.bytes_transferred = st.bytes_transferred;
                    self.metrics
                        .sync_files_transferred
                        .inc_by(st.files_transferred.max(0) as u64);
                    self.metrics
                        .sync_bytes_transferred
                        .inc_by(st.bytes_transferred.max(0) as u64);
                    if !self.save(claim, etag).await? {
                        return Ok(Watch::Lost);
                    }
                    return Ok(Watch::Success);
                }
                Phase::Error { code, detail } => {
                    let reason = format!("{code}: {detail}");
                    chunk.error = Some(reason.clone());
                    return Ok(Watch::Error(reason));
                }
                Phase::Unknown(raw) if !unknown_logged => {
                    warn!(execution_arn = %arn, status = %raw, "unknown DataSync status; treating it as still running");
                    unknown_logged = true;
                }
                _ => {}
            }
            // Refreshing the claim on every poll is the heartbeat that keeps it from going stale.
            if !self.save(claim, etag).await? {
                return Ok(Watch::Lost);
            }
            if begun.elapsed() >= s.timeout {
                return Ok(Watch::Timeout);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(Watch::Interrupted),
                _ = tokio::time::sleep(s.poll_interval) => {}
            }
        }
    }
}

enum Watch {
    Success,
    Error(String),
    Timeout,
    Lost,
    Interrupted,
}

fn skipped(date: NaiveDate, reason: &str) -> DateOutcome {
    info!(%date, reason, "sync date skipped");
    DateOutcome::Skipped {
        reason: reason.to_string(),
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
