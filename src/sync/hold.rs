//! A date's claim and the DataSync task's lock, as one runner takes and keeps them: the lock
//! (waiting while another runner has it), the claim (created, retried, resumed or taken
//! over), saves with stamped writes, the end, a failure with its retry time, letting go.

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::claim::{self, Chunk, Claim, ClaimAction, ClaimPolicy, ClaimStatus, Skip};
use super::outcome::{DateOutcome, SyncError};
use super::runner::{Hold, RunOpts, Syncer};
use super::state::{Held, Stored};
use super::tasklock::{self, LockAction, TaskLock};

impl Syncer {
    /// With the task's lock held: the claim, decided again (it may have moved on while the
    /// task was busy) and taken. The lock is let go when the claim is not this runner's.
    pub(crate) async fn claim_holding(
        &self,
        date: NaiveDate,
        policy: &ClaimPolicy<'_>,
        mut lock: Held<TaskLock>,
    ) -> Result<Result<Hold, Skip>, SyncError> {
        let claimed = match self.store.get(date).await {
            Ok(stored) => {
                let now = self.clock.now();
                match claim::next_action(
                    stored.as_ref().map(|s| &s.value),
                    now,
                    &self.holder,
                    policy,
                ) {
                    ClaimAction::Skip(why) => Ok(Err(why)),
                    action => self
                        .take_claim(date, action, stored)
                        .await
                        .map(|c| c.ok_or(Skip::ClaimedElsewhere)),
                }
            }
            Err(e) => Err(e.into()),
        };
        if !matches!(claimed, Ok(Ok(_))) {
            self.release(&mut lock).await;
        }
        Ok(claimed?.map(|claim| Hold { claim, lock }))
    }

    /// After the date's run: a failure is recorded in the claim, and the task's lock let go,
    /// unless the claim must stay as it is (running, with its start token, for whoever looks
    /// next after claim_ttl to find the execution) or a run that does not wait left its
    /// execution going.
    pub(crate) async fn conclude(&self, hold: &mut Hold, outcome: &Result<DateOutcome, SyncError>) {
        match outcome {
            Ok(_) | Err(SyncError::Unsure(_)) | Err(SyncError::State(_)) => {}
            Err(e) => self.fail(hold, e.to_string()).await,
        }
        if !matches!(
            outcome,
            Ok(DateOutcome::Started { .. }) | Err(SyncError::Unsure(_))
        ) {
            self.release(&mut hold.lock).await;
        }
    }

    /// Takes the DataSync task's lock for `date`, waiting while another runner has it (it
    /// releases it when its date ends, or it goes stale after `claim_ttl`). A run that does not
    /// wait (`--no-wait`) is told who has it instead. `None` on shutdown.
    pub(crate) async fn take_task(
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
            if !self.poll_pause(shutdown).await {
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
