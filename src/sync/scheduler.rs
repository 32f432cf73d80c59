//! The sync task: fires on `sync.schedule` in `sync.timezone`, then runs the target date and
//! any missed dates (catch-up), oldest first, one at a time.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::json;
use tracing::{debug, error, info, warn};

use super::claim::Claim;
use super::outcome::DateOutcome;
use super::plan;
use super::runner::{RunOpts, Syncer};
use super::state::{ClaimStatus, StateStore, StoreError};
use crate::context::{Context, TaskResult};
use crate::health::TaskHandle;

pub async fn run(ctx: Context, handle: TaskHandle) -> TaskResult {
    let cfg = ctx.config.clone();
    let clock = ctx.clock.clone();
    let (schedule, tz) = (&cfg.sync.schedule, cfg.sync.timezone);
    let syncer = task_syncer(&ctx, &handle);

    // Ready once the state bucket answers: without it no date can be claimed.
    let store = syncer.store.documents();
    let every = cfg.sync.poll_interval;
    if !store
        .wait_until_reachable(&handle, &clock, every, &ctx.shutdown)
        .await
    {
        return Ok(());
    }

    // A restart catches up from the last fire time that already passed, never earlier than
    // the schedule would have (the writer may still be filling today's D-1 partitions).
    let mut fired = schedule.previous_before(tz, clock.now());
    if let Some(prev) = fired {
        cycle(&ctx, &syncer, &handle, prev).await;
    }
    loop {
        if ctx.shutdown.is_cancelled() {
            return Ok(());
        }
        let next = match next_fire(schedule, tz, fired, clock.now()) {
            None => {
                return Err(format!("schedule `{}` never fires again", schedule.as_str()).into());
            }
            Some(NextFire::Missed(missed)) => {
                debug!(target: "s3_reconciler::sync::scheduler", reason = "missed_fire", fire = %missed, "scheduler woke");
                fired = Some(missed);
                cycle(&ctx, &syncer, &handle, missed).await;
                continue;
            }
            Some(NextFire::At(next)) => next,
        };
        let Some(wake) = sleep_until_due(&ctx, &syncer, &handle, next, fired).await else {
            return Ok(());
        };
        debug!(target: "s3_reconciler::sync::scheduler", reason = ?wake, "scheduler woke");
        match (wake, fired) {
            // Only reads the claims again (the loop does): a claim written by another
            // process meanwhile (a manual `sync --no-wait`, a replica that then died) may
            // need this one.
            (Wake::Look, _) => {}
            (Wake::Retry, Some(f)) => {
                info!("retrying dates that are due, or whose claims went stale");
                cycle(&ctx, &syncer, &handle, f).await;
            }
            _ => {
                fired = Some(next);
                cycle(&ctx, &syncer, &handle, next).await;
            }
        }
    }
}

/// The task's runner: its health and clock are the task's, its holder shown in `/status`.
fn task_syncer(ctx: &Context, handle: &TaskHandle) -> Syncer {
    let syncer = Syncer::new(Arc::clone(&ctx.config), &ctx.clients, ctx.metrics.clone())
        .with_health(handle.clone())
        .with_clock(ctx.clock.clone());
    handle.set_detail("holder", json!(syncer.holder));
    syncer
}

/// Sleeps until the next fire, an earlier due retry, or the next look at the claims; says
/// which. `None` on shutdown.
async fn sleep_until_due(
    ctx: &Context,
    syncer: &Syncer,
    handle: &TaskHandle,
    next: DateTime<Utc>,
    fired: Option<DateTime<Utc>>,
) -> Option<Wake> {
    let s = &ctx.config.sync;
    let now = ctx.clock.now();
    handle.set_detail("next_run", json!(next));
    let retry = match fired {
        Some(f) => next_retry(ctx, syncer, f).await,
        None => None,
    };
    handle.set_detail("next_retry", json!(retry));
    let floor = s.retry_interval.min(s.claim_ttl).min(RETRY_FLOOR);
    let look = now + chrono::Duration::from_std(s.claim_ttl).unwrap_or_default();
    let (at, wake) = next_wake(next, retry, look, now, floor);
    ctx.shutdown
        .run_until_cancelled(ctx.clock.sleep_until(at))
        .await
        .map(|()| wake)
}

/// The schedule's next fire after the one that last ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextFire {
    /// Still to come.
    At(DateTime<Utc>),
    /// Passed while the last cycle ran: run it now (the latest one, if several passed).
    Missed(DateTime<Utc>),
}

/// What comes after the fire `fired` (none yet: from `now`), as seen at `now`.
pub(crate) fn next_fire(
    schedule: &crate::config::Schedule,
    tz: chrono_tz::Tz,
    fired: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<NextFire> {
    let next = schedule.next_after(tz, fired.unwrap_or(now))?;
    if next > now {
        return Some(NextFire::At(next));
    }
    Some(NextFire::Missed(
        schedule.previous_before(tz, now).unwrap_or(next),
    ))
}

/// A due retry wakes the scheduler no sooner than this (or `sync.retry_interval` or
/// `sync.claim_ttl`, if shorter) after the last cycle, so a date whose claim cannot be updated (the state bucket is
/// down, the plan fails) is not retried in a tight loop.
const RETRY_FLOOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the scheduler wakes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The schedule fires: a new target date.
    Fire,
    /// A failed, empty or late date is due again, or a running claim went stale.
    Retry,
    /// Nothing is due: a look at the claims every `sync.claim_ttl`, since other processes
    /// write claims this one has not seen.
    Look,
}

/// When the scheduler wakes next: the schedule's next fire, or an earlier due retry (not
/// sooner than `floor` from now), or else the next look at the claims.
pub(crate) fn next_wake(
    next_fire: DateTime<Utc>,
    next_retry: Option<DateTime<Utc>>,
    look: DateTime<Utc>,
    now: DateTime<Utc>,
    floor: std::time::Duration,
) -> (DateTime<Utc>, Wake) {
    let floor = now + chrono::Duration::from_std(floor).unwrap_or_default();
    match next_retry.map(|r| r.max(floor)) {
        Some(r) if r < next_fire && r <= look => (r, Wake::Retry),
        _ if look < next_fire => (look, Wake::Look),
        _ => (next_fire, Wake::Fire),
    }
}

/// When the dates the cycle fired at `fired_at` covers need looking at again: the earliest
/// due retry, claim going stale, or the DataSync task's lock going stale.
async fn next_retry(
    ctx: &Context,
    syncer: &Syncer,
    fired_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let s = &ctx.config.sync;
    let target = plan::target_date(fired_at, s.timezone, s.lag_days);
    let claims = match dates_to_run(&syncer.store, target, s).await {
        Ok(c) => c.next_retry,
        Err(e) => {
            warn!(error = %e, "cannot read claims to schedule retries; looking again after the retry floor");
            Some(ctx.clock.now())
        }
    };
    let lock = task_lock_stale_at(syncer).await;
    claims.into_iter().chain(lock).min()
}

/// When the DataSync task's lock, held by another runner, goes stale.
async fn task_lock_stale_at(syncer: &Syncer) -> Option<DateTime<Utc>> {
    let s = &syncer.config.sync;
    let name = super::tasklock::name(&s.task_arn);
    let lock = syncer
        .store
        .documents()
        .get::<super::tasklock::TaskLock>(&name)
        .await
        .ok()??;
    match super::tasklock::lock_action(
        Some(&lock.value),
        &syncer.holder,
        &syncer.nonce,
        syncer.clock.now(),
        s.claim_ttl,
    ) {
        super::tasklock::LockAction::Busy { until, .. } => {
            Some(until + chrono::Duration::seconds(1))
        }
        super::tasklock::LockAction::Take => None,
    }
}

/// One scheduled cycle: the target date for `fired_at` plus missed dates.
async fn cycle(ctx: &Context, syncer: &Syncer, handle: &TaskHandle, fired_at: DateTime<Utc>) {
    let s = &ctx.config.sync;
    let target = plan::target_date(fired_at, s.timezone, s.lag_days);
    let dates = match dates_to_run(&syncer.store, target, s).await {
        Ok(c) => {
            // After a restart the gauge starts at 0; the claims remember the last success, so
            // the "no successful sync for 26h" alert does not fire on every deployment.
            if let Some(at) = c.last_success_at {
                ctx.metrics.sync.succeeded_at(at.timestamp());
            }
            c.dates
        }
        Err(e) => {
            error!(error = %e, "cannot read claims; running only the target date");
            vec![target]
        }
    };
    if dates.len() > 1 {
        info!(?dates, "catching up missed dates, oldest first");
    }
    for date in dates {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        handle.touch();
        let outcome = syncer
            .run_date(
                date,
                RunOpts {
                    force: false,
                    wait: true,
                },
                &ctx.shutdown,
            )
            .await;
        let mut summary = match &outcome {
            Ok(o) => o.to_json(date),
            Err(e) => json!({"date": date, "result": "failed", "error": e.to_string()}),
        };
        summary["at"] = json!(ctx.clock.now());
        handle.set_detail("last_run", summary);
        match outcome {
            Ok(DateOutcome::Success { .. }) => handle.set_detail("last_success", json!(date)),
            Ok(_) => {}
            Err(e) => error!(%date, error = %e, "sync run failed"),
        }
    }
}

/// What the claims of the catch-up window say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// Dates to run, oldest first, ending with the target date.
    pub dates: Vec<NaiveDate>,
    /// When the most recent successful run in the window (target included) was recorded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the scheduler should look at a date of the window (target included) again: the
    /// earliest due retry, or the earliest running claim going stale.
    pub next_retry: Option<DateTime<Utc>>,
}

/// The target date plus earlier dates in the catch-up window that still need a run.
///
/// Dates after the last successful one are missed dates. Any date whose claim is running (its
/// holder may be gone) or may be retried is looked at, before or after the last success. With
/// no success in the window (a new deployment) only dates that were already attempted are run,
/// so a first start does not backfill a week nobody asked for.
pub async fn dates_to_run(
    store: &StateStore,
    target: NaiveDate,
    s: &crate::config::SyncConfig,
) -> Result<CatchUp, StoreError> {
    let max_attempts = s.max_attempts.get();
    let mut states = Vec::new();
    for back in (1..=s.catch_up_days).rev() {
        let Some(d) = target.checked_sub_days(Days::new(u64::from(back))) else {
            continue;
        };
        let claim = store.get(d).await?.map(|s| s.value);
        states.push((d, claim));
    }
    let target_claim = store.get(target).await?.map(|s| s.value);
    let last_success_at = states
        .iter()
        .filter_map(|(_, c)| c.as_ref())
        .chain(target_claim.as_ref())
        .filter(|c| c.status == ClaimStatus::Success)
        .map(|c| c.updated_at)
        .max();
    let next_retry = states
        .iter()
        .filter_map(|(_, c)| c.as_ref())
        .chain(target_claim.as_ref())
        .filter_map(|c| c.wake_at(max_attempts, s.claim_ttl))
        .min();
    Ok(CatchUp {
        dates: select_dates(target, &states, max_attempts),
        last_success_at,
        next_retry,
    })
}

/// Pure selection behind [`dates_to_run`]; `earlier` is oldest first, without `target`.
pub(crate) fn select_dates(
    target: NaiveDate,
    earlier: &[(NaiveDate, Option<Claim>)],
    max_attempts: u32,
) -> Vec<NaiveDate> {
    let last_success = earlier
        .iter()
        .filter(|(_, c)| c.as_ref().is_some_and(|c| c.status == ClaimStatus::Success))
        .map(|(d, _)| *d)
        .max();
    let mut out: Vec<NaiveDate> = earlier
        .iter()
        .filter(|(d, c)| match c {
            // A running claim's holder may be gone, a retry may be due: whatever the last
            // success, the claim's state machine decides.
            Some(c) => c.status == ClaimStatus::Running || c.retryable(max_attempts),
            None => last_success.is_some_and(|s| *d > s),
        })
        .map(|(d, _)| *d)
        .collect();
    out.push(target);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, day).unwrap()
    }

    fn claim(day: u32, status: ClaimStatus, attempts: u32) -> Option<Claim> {
        Some(Claim {
            date: d(day),
            status,
            holder: "h".into(),
            holder_nonce: String::new(),
            stamp: String::new(),
            attempts,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            window: vec![],
            projects: 0,
            chunks: vec![],
            error: None,
            verification: None,
            retry_at: None,
        })
    }

    #[test]
    fn missed_days_after_last_success_are_caught_up() {
        let earlier = vec![
            (d(3), claim(3, ClaimStatus::Success, 1)),
            (d(4), None),
            (d(5), claim(5, ClaimStatus::Failed, 1)),
            (d(6), None),
        ];
        assert_eq!(
            select_dates(d(7), &earlier, 3),
            vec![d(4), d(5), d(6), d(7)]
        );
    }

    #[test]
    fn exhausted_dates_are_not_retried() {
        let earlier = vec![
            (d(5), claim(5, ClaimStatus::Success, 1)),
            (d(6), claim(6, ClaimStatus::Failed, 3)),
        ];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(7)]);
    }

    #[test]
    fn a_due_retry_wakes_before_the_next_fire_but_not_in_a_tight_loop() {
        use chrono::TimeZone;
        let now = Utc.with_ymd_and_hms(2024, 3, 9, 1, 30, 0).unwrap();
        let fire = now + chrono::Duration::hours(24);
        let min = |m| now + chrono::Duration::minutes(m);
        let floor = std::time::Duration::from_secs(60);
        let never = fire + chrono::Duration::days(1);
        assert_eq!(next_wake(fire, None, never, now, floor), (fire, Wake::Fire));
        assert_eq!(
            next_wake(fire, Some(min(15)), never, now, floor),
            (min(15), Wake::Retry)
        );
        // Overdue: a minute from now, not at once.
        assert_eq!(
            next_wake(fire, Some(min(-5)), never, now, floor),
            (min(1), Wake::Retry)
        );
        // A retry due after the next fire is left to that cycle.
        assert_eq!(
            next_wake(
                fire,
                Some(fire + chrono::Duration::minutes(1)),
                never,
                now,
                floor
            ),
            (fire, Wake::Fire)
        );
        // Nothing due for a while: a look at the claims every claim_ttl in between.
        assert_eq!(
            next_wake(fire, Some(min(30)), min(10), now, floor),
            (min(10), Wake::Look)
        );
        assert_eq!(
            next_wake(fire, None, min(10), now, floor),
            (min(10), Wake::Look)
        );
    }

    #[test]
    fn empty_dates_are_retried_like_failed_ones() {
        let earlier = vec![
            (d(5), claim(5, ClaimStatus::Success, 1)),
            (d(6), claim(6, ClaimStatus::Empty, 1)),
        ];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(6), d(7)]);
        let earlier = vec![
            (d(5), claim(5, ClaimStatus::Success, 1)),
            (d(6), claim(6, ClaimStatus::Empty, 3)),
        ];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(7)]);
    }

    /// Issue 23 item 1: a failed date older than the newest success is still retried, and a
    /// running claim older than it still looked at (its holder may be gone).
    #[test]
    fn a_failed_or_running_date_before_the_last_success_is_still_run() {
        let mut failed = claim(5, ClaimStatus::Failed, 1);
        if let Some(c) = failed.as_mut() {
            c.retry_at = Some(Utc::now() - chrono::Duration::minutes(5));
        }
        let earlier = vec![(d(5), failed), (d(6), claim(6, ClaimStatus::Success, 1))];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(5), d(7)]);
        let earlier = vec![
            (d(4), claim(4, ClaimStatus::Running, 1)),
            (d(5), claim(5, ClaimStatus::Late, 2)),
            (d(6), claim(6, ClaimStatus::Success, 1)),
        ];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(4), d(5), d(7)]);
        // Given up, or never attempted before the last success: left alone.
        let earlier = vec![
            (d(4), None),
            (d(5), claim(5, ClaimStatus::Failed, 3)),
            (d(6), claim(6, ClaimStatus::Success, 1)),
        ];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(7)]);
    }

    /// Issue 23 item 2: a running claim wakes the scheduler when it would go stale (its
    /// holder may have died in a rollout); a due retry when due; a success never.
    #[test]
    fn running_claims_wake_the_scheduler_when_they_would_go_stale() {
        let ttl = std::time::Duration::from_secs(600);
        let running = claim(6, ClaimStatus::Running, 1).unwrap();
        assert_eq!(
            running.wake_at(3, ttl),
            Some(running.updated_at + chrono::Duration::seconds(601))
        );
        let mut failed = claim(6, ClaimStatus::Failed, 1).unwrap();
        let at = Utc::now() + chrono::Duration::minutes(15);
        failed.retry_at = Some(at);
        assert_eq!(failed.wake_at(3, ttl), Some(at));
        failed.attempts = 3;
        assert_eq!(failed.wake_at(3, ttl), None, "given up");
        assert_eq!(
            claim(6, ClaimStatus::Success, 1).unwrap().wake_at(3, ttl),
            None
        );
    }

    /// Issue 23 item 3: a fire that passed during a long cycle runs at once.
    #[test]
    fn a_fire_that_passed_during_a_long_cycle_runs_at_once() {
        use chrono::TimeZone;
        let schedule = crate::config::Schedule::parse("0 0 1 * * *").unwrap();
        let tz = chrono_tz::UTC;
        let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2024, 3, d, h, m, 0).unwrap();
        // The 01:00 cycle of the 9th ran until 01:30 on the 10th.
        assert_eq!(
            next_fire(&schedule, tz, Some(at(9, 1, 0)), at(10, 1, 30)),
            Some(NextFire::Missed(at(10, 1, 0)))
        );
        // Two days long: the latest passed fire runs, once.
        assert_eq!(
            next_fire(&schedule, tz, Some(at(9, 1, 0)), at(11, 2, 0)),
            Some(NextFire::Missed(at(11, 1, 0)))
        );
        assert_eq!(
            next_fire(&schedule, tz, Some(at(9, 1, 0)), at(9, 3, 0)),
            Some(NextFire::At(at(10, 1, 0)))
        );
        assert_eq!(
            next_fire(&schedule, tz, None, at(9, 3, 0)),
            Some(NextFire::At(at(10, 1, 0)))
        );
    }

    #[test]
    fn fresh_deployment_does_not_backfill() {
        let earlier = vec![(d(5), None), (d(6), None)];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(7)]);
        let earlier = vec![(d(5), None), (d(6), claim(6, ClaimStatus::Failed, 1))];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(6), d(7)]);
    }
}
