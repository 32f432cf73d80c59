//! A date's executions: start each chunk's (or adopt the one a crashed or unanswered start
//! left), follow it to its end, one at a time, and verify when all are done.
//!
//! Never two executions of the task at once: the runner holds the task's lock, and before a
//! start it waits until DataSync reports no execution of the task under way (one started by
//! hand, or left by a runner that died). Never the same chunk twice: a start token is written
//! to the claim before StartTaskExecution (sent with one attempt) and tagged onto the
//! execution; a chunk with a token and no ARN is first looked for by its token.

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::claim::{self, ChunkStep, ClaimStatus, ExecStatus, Skip};
use super::outcome::{DateOutcome, SyncError, skipped};
use super::runner::{Hold, RunOpts, Syncer};
use super::verification::{self, Next};
use super::watch::Watch;
use crate::config::FilterMode;
use crate::verify::{PartitionReport, Verification};

/// The tag that carries a chunk's start token.
pub const START_TAG: &str = "s3-reconciler:start";

/// What to do with chunk `i` before following it.
enum Begin {
    Follow(String),
    Ended(DateOutcome),
}

impl Syncer {
    /// Runs the held claim's chunks, verifies, follows up, and ends the claim.
    pub(crate) async fn execute(
        &self,
        hold: &mut Hold,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<DateOutcome, SyncError> {
        self.metrics.sync.filter_built(hold.claim.value.patterns());
        if hold.claim.value.chunks.is_empty() {
            return self.no_projects(hold).await;
        }
        loop {
            if let Some(ended) = self.run_chunks(hold, opts, shutdown).await? {
                return Ok(ended);
            }
            if !self.config.sync.verify {
                break;
            }
            let (v, reports) = self.verify_claim(&hold.claim.value).await?;
            hold.claim.value.verification = Some(v.clone());
            let next = verification::next_step(
                &v,
                hold.claim.value.attempts,
                self.config.sync.max_attempts.get(),
            );
            match next {
                Next::Complete => break,
                Next::Empty => return self.partitions_empty(hold, &v).await,
                Next::GiveUp => return self.gave_up(hold, &v).await,
                Next::Late => return self.late(hold, &v, &reports).await,
                Next::FollowUp => {
                    self.add_follow_up(&mut hold.claim.value, &reports)?;
                    if !self.save(hold).await? {
                        return Ok(skipped(Skip::Lost));
                    }
                }
            }
        }
        self.succeeded(hold).await
    }

    /// No project to sync for the date (none at all, or none left after the globs).
    async fn no_projects(&self, hold: &mut Hold) -> Result<DateOutcome, SyncError> {
        let s = &self.config.sync;
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
        self.ended(hold, ClaimStatus::Empty, reason, DateOutcome::Empty)
            .await
    }

    /// Every partition of the date is empty: the writer may be late, so it is retried.
    async fn partitions_empty(
        &self,
        hold: &mut Hold,
        v: &Verification,
    ) -> Result<DateOutcome, SyncError> {
        let reason = format!(
            "every one of the date's {} partition(s) is empty in s3://{}: the writer may be late",
            v.partitions, self.config.source.bucket
        );
        warn!(%reason, "nothing to sync for the date yet");
        self.ended(hold, ClaimStatus::Empty, reason, DateOutcome::Empty)
            .await
    }

    /// Objects still missing after every attempt.
    async fn gave_up(&self, hold: &mut Hold, v: &Verification) -> Result<DateOutcome, SyncError> {
        let c = v.counts;
        let reason = format!(
            "after {} attempt(s), {} object(s) are missing, {} of another size and {} late in the target (e.g. {})",
            hold.claim.value.attempts,
            c.missing,
            c.size_mismatched,
            c.late,
            v.missing_keys.join(", ")
        );
        let outcome = DateOutcome::Incomplete {
            missing: c.missing,
            size_mismatched: c.size_mismatched,
            late: c.late,
        };
        self.ended(hold, ClaimStatus::Failed, reason, outcome).await
    }

    /// Objects written after their execution started: a follow-up copies and verifies them
    /// after `sync.retry_interval`, before the date is final.
    async fn late(
        &self,
        hold: &mut Hold,
        v: &Verification,
        reports: &[PartitionReport],
    ) -> Result<DateOutcome, SyncError> {
        let late = v.counts.late;
        self.add_follow_up(&mut hold.claim.value, reports)?;
        let retry = self.clock.now()
            + chrono::Duration::from_std(self.config.sync.retry_interval).unwrap_or_default();
        let claim = &mut hold.claim.value;
        claim.status = ClaimStatus::Late;
        claim.error = Some(format!(
            "{late} object(s) written after their execution started; a follow-up copies and verifies them"
        ));
        claim.retry_at = Some(retry);
        info!(retry_at = %retry, late, "late objects: the follow-up runs later");
        self.saved(hold, DateOutcome::Late { objects: late }).await
    }

    /// Every chunk ran and (if asked) verified complete.
    async fn succeeded(&self, hold: &mut Hold) -> Result<DateOutcome, SyncError> {
        let claim = &mut hold.claim.value;
        claim.status = ClaimStatus::Success;
        claim.error = None;
        claim.retry_at = None;
        let files = claim.chunks.iter().map(|c| c.files_transferred).sum();
        let bytes = claim.chunks.iter().map(|c| c.bytes_transferred).sum();
        let chunks = claim.chunks.len();
        let outcome = self
            .saved(hold, DateOutcome::Success { files, bytes })
            .await?;
        if matches!(outcome, DateOutcome::Success { .. }) {
            info!(files, bytes, chunks, "sync succeeded");
        }
        Ok(outcome)
    }

    /// Ends the claim (failed or empty, with a retry time) and returns `outcome`, or `Lost`.
    async fn ended(
        &self,
        hold: &mut Hold,
        status: ClaimStatus,
        reason: String,
        outcome: DateOutcome,
    ) -> Result<DateOutcome, SyncError> {
        match self.end(hold, status, reason).await? {
            true => Ok(outcome),
            false => Ok(skipped(Skip::Lost)),
        }
    }

    /// Writes the claim as it is and returns `outcome`, or `Lost` when another runner has it:
    /// an outcome is only reported for a date this runner still holds.
    async fn saved(&self, hold: &mut Hold, outcome: DateOutcome) -> Result<DateOutcome, SyncError> {
        match self.save(hold).await? {
            true => Ok(outcome),
            false => Ok(skipped(Skip::Lost)),
        }
    }

    /// Starts or follows every chunk not done yet, in order. `Some` when the date ends here
    /// (an execution failed or timed out, the claim was lost, shutdown, `--no-wait`).
    async fn run_chunks(
        &self,
        hold: &mut Hold,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<Option<DateOutcome>, SyncError> {
        let total = hold.claim.value.chunks.len();
        for i in 0..total {
            let arn = match self.begin(hold, i, opts, shutdown).await? {
                None => continue,
                Some(Begin::Ended(o)) => return Ok(Some(o)),
                Some(Begin::Follow(arn)) => arn,
            };
            let watched = {
                let _watching = self.metrics.sync.execution_watched();
                self.watch(hold, i, &arn, shutdown).await?
            };
            match watched {
                Watch::Success => {}
                Watch::Lost => return Ok(Some(skipped(Skip::Lost))),
                Watch::Interrupted => return Ok(Some(DateOutcome::Interrupted)),
                Watch::Error(reason) => {
                    error!(execution_arn = %arn, %reason, attempt = hold.claim.value.attempts, "DataSync execution failed");
                    let outcome = DateOutcome::Failed {
                        reason: reason.clone(),
                    };
                    return self
                        .ended(hold, ClaimStatus::Failed, reason, outcome)
                        .await
                        .map(Some);
                }
                Watch::Timeout => {
                    if let Err(e) = self.datasync.cancel(&arn).await {
                        warn!(error = %e, "could not cancel the timed-out execution");
                    }
                    let reason = format!(
                        "execution {arn} did not finish within {}",
                        humantime::format_duration(self.config.sync.timeout)
                    );
                    let outcome = DateOutcome::TimedOut { execution_arn: arn };
                    return self
                        .ended(hold, ClaimStatus::Failed, reason, outcome)
                        .await
                        .map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Chunk `i`'s execution to follow: the one recorded, the one its start token finds, or
    /// a new one. `None` when the chunk is done.
    async fn begin(
        &self,
        hold: &mut Hold,
        i: usize,
        opts: RunOpts,
        shutdown: &CancellationToken,
    ) -> Result<Option<Begin>, SyncError> {
        let found = match claim::chunk_step(&hold.claim.value.chunks[i]) {
            ChunkStep::Done => return Ok(None),
            ChunkStep::Follow(arn) => return Ok(Some(Begin::Follow(arn))),
            ChunkStep::Find(token) => self.find_started(hold, &token).await?,
            ChunkStep::Start => None,
        };
        if let Some(arn) = found {
            info!(chunk = i + 1, execution_arn = %arn, "adopting the execution a previous start left");
            return Ok(Some(self.adopt(hold, i, arn).await?));
        }
        if let Some(ended) = self.wait_for_idle_task(hold, shutdown).await? {
            return Ok(Some(Begin::Ended(ended)));
        }
        let begun = self.start(hold, i).await?;
        if let Begin::Follow(arn) = &begun
            && !opts.wait
        {
            return Ok(Some(Begin::Ended(DateOutcome::Started {
                execution_arn: arn.clone(),
            })));
        }
        Ok(Some(begun))
    }

    /// The execution started with `token`, if any (an ERROR one does not count: the chunk
    /// runs again). A failed lookup leaves it unknown: the claim stays as it is.
    async fn find_started(&self, hold: &Hold, token: &str) -> Result<Option<String>, SyncError> {
        let known: Vec<&str> = hold
            .claim
            .value
            .chunks
            .iter()
            .filter_map(|c| c.execution_arn.as_deref())
            .collect();
        match self.datasync.find_tagged(START_TAG, token, &known).await {
            Ok(found) => Ok(found.map(|(arn, _)| arn)),
            Err(e) => Err(SyncError::Unsure(e)),
        }
    }

    /// Records `arn` as chunk `i`'s execution.
    async fn adopt(&self, hold: &mut Hold, i: usize, arn: String) -> Result<Begin, SyncError> {
        let chunk = &mut hold.claim.value.chunks[i];
        chunk.execution_arn = Some(arn.clone());
        chunk.status = Some(ExecStatus::Started);
        chunk.error = None;
        if !self.save(hold).await? {
            return Ok(Begin::Ended(skipped(Skip::Lost)));
        }
        Ok(Begin::Follow(arn))
    }

    /// Starts chunk `i`'s execution: the start token goes into the claim first, then into
    /// the execution's tags. A start that fails is looked for by its token before the date
    /// is failed: it may have started all the same.
    async fn start(&self, hold: &mut Hold, i: usize) -> Result<Begin, SyncError> {
        let s = &self.config.sync;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let total = hold.claim.value.chunks.len();
        {
            let chunk = &mut hold.claim.value.chunks[i];
            chunk.start_token = Some(token.clone());
            chunk.execution_arn = None;
            chunk.status = None;
            chunk.started_at = None;
            chunk.launched_at = None;
            chunk.error = None;
        }
        // Written before the start: a runner that lost the claim starts nothing.
        if !self.save(hold).await? {
            return Ok(Begin::Ended(skipped(Skip::Lost)));
        }
        let filter = hold.claim.value.chunks[i].filter.clone();
        if s.filter_mode == FilterMode::Task {
            self.datasync
                .set_includes(&filter)
                .await
                .map_err(SyncError::DataSync)?;
        }
        let tags = [
            (
                "s3-reconciler:partition-date",
                hold.claim.value.date.to_string(),
            ),
            ("s3-reconciler:chunk", format!("{}/{total}", i + 1)),
            (
                "s3-reconciler:attempt",
                hold.claim.value.attempts.to_string(),
            ),
            (START_TAG, token.clone()),
        ];
        let filter_override = (s.filter_mode == FilterMode::Execution).then_some(filter.as_str());
        let arn = match self.datasync.start(filter_override, &tags).await {
            Ok(arn) => arn,
            Err(e) => match self.find_started(hold, &token).await? {
                Some(arn) => {
                    warn!(error = %e, execution_arn = %arn, "the start's answer was lost, but it started: adopting it");
                    arn
                }
                None => return Err(SyncError::DataSync(e)),
            },
        };
        let chunk = &mut hold.claim.value.chunks[i];
        info!(chunk = i + 1, chunks = total, execution_arn = %arn,
              patterns = chunk.patterns, attempt = chunk.attempt, "started DataSync execution");
        chunk.execution_arn = Some(arn.clone());
        chunk.status = Some(ExecStatus::Started);
        chunk.started_at = Some(self.clock.now());
        if !self.save(hold).await? {
            self.abandon(hold, i, &arn).await;
            return Ok(Begin::Ended(skipped(Skip::Lost)));
        }
        Ok(Begin::Follow(arn))
    }

    /// After losing the claim between starting chunk `i`'s execution and recording it: the
    /// runner that has the claim now either adopted the execution (found by its start token)
    /// or started its own, and then this one must not run as well.
    async fn abandon(&self, hold: &Hold, i: usize, arn: &str) {
        let adopted = match self.store.get(hold.claim.value.date).await {
            Ok(Some(now)) => now
                .value
                .chunks
                .get(i)
                .is_some_and(|c| c.execution_arn.as_deref() == Some(arn)),
            // Unknown: cancel it. Should the claim's new holder have adopted it, it sees the
            // execution fail and retries the date; an untracked second copy would be worse.
            Ok(None) | Err(_) => false,
        };
        if adopted {
            return;
        }
        warn!(execution_arn = %arn, "lost the claim just after starting an execution; cancelling it");
        if let Err(e) = self.datasync.cancel(arn).await {
            warn!(error = %e, execution_arn = %arn, "could not cancel the execution started after the claim was lost");
        }
    }

    /// Waits until DataSync reports no execution of the task under way, refreshing the claim
    /// meanwhile. `Some` when the date ends here (lost, shutdown, or the wait timed out).
    async fn wait_for_idle_task(
        &self,
        hold: &mut Hold,
        shutdown: &CancellationToken,
    ) -> Result<Option<DateOutcome>, SyncError> {
        let s = &self.config.sync;
        let since = self.clock.now();
        loop {
            let busy = self
                .datasync
                .current_execution()
                .await
                .map_err(SyncError::DataSync)?;
            let Some(arn) = busy else { return Ok(None) };
            if (self.clock.now() - since).to_std().unwrap_or_default() >= s.timeout {
                let reason = format!(
                    "the DataSync task stayed busy with {arn}, an execution this date did not start, for {}",
                    humantime::format_duration(s.timeout)
                );
                let outcome = DateOutcome::Failed {
                    reason: reason.clone(),
                };
                return self
                    .ended(hold, ClaimStatus::Failed, reason, outcome)
                    .await
                    .map(Some);
            }
            info!(execution_arn = %arn, "the DataSync task is busy with another execution; waiting");
            if !self.save(hold).await? {
                return Ok(Some(skipped(Skip::Lost)));
            }
            if !self.poll_pause(shutdown).await {
                return Ok(Some(DateOutcome::Interrupted));
            }
        }
    }
}
