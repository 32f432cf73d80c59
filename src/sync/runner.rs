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
use tracing::{Instrument, info_span};

use super::claim::{self, Claim, ClaimAction, ClaimPolicy};
use super::events::DateEnded;
use super::outcome::skipped;
pub use super::outcome::{DateOutcome, SyncError};
use super::plan::{self, Plan};
use super::state::{Held, StateStore};
use super::tasklock::TaskLock;
use crate::aws::Clients;
use crate::aws::datasync::DataSync;
use crate::aws::s3::Bucket;
use crate::clock::SharedClock;
use crate::config::{Config, DATASYNC_FILTER_MAX_LEN};
use crate::health::TaskHandle;
use crate::metrics::Metrics;

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
        DateEnded {
            date,
            outcome: &outcome,
            seconds: started.elapsed().as_secs_f64(),
            at: self.clock.now(),
        }
        .record(&self.metrics, self.health.as_ref());
        outcome
    }

    /// Waits one `sync.poll_interval` between looks at DataSync or the task's lock; false
    /// when shutdown came first.
    pub(crate) async fn poll_pause(&self, shutdown: &CancellationToken) -> bool {
        let pause = self.clock.sleep(self.config.sync.poll_interval);
        shutdown.run_until_cancelled(pause).await.is_some()
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
        let first = claim::next_action(
            stored.as_ref().map(|s| &s.value),
            now,
            &self.holder,
            &policy,
        );
        if let ClaimAction::Skip(why) = first {
            return Ok(skipped(why));
        }
        let Some(lock) = self.take_task(date, opts, shutdown).await? else {
            return Ok(DateOutcome::Interrupted);
        };
        let lock = match lock {
            Ok(lock) => lock,
            Err(busy) => return Ok(skipped(busy)),
        };
        let mut hold = match self.claim_holding(date, &policy, lock).await? {
            Ok(hold) => hold,
            Err(why) => return Ok(skipped(why)),
        };
        let outcome = self.execute(&mut hold, opts, shutdown).await;
        self.conclude(&mut hold, &outcome).await;
        outcome
    }
}
