//! The sync task: fires on `sync.schedule` in `sync.timezone`, then runs the target date and
//! any missed dates (catch-up), oldest first, one at a time.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::json;
use tracing::{error, info, warn};

use super::claim::Claim;
use super::plan;
use super::runner::{DateOutcome, RunOpts, Syncer};
use super::state::{ClaimStatus, StateError, StateStore};
use crate::context::{Context, TaskResult};
use crate::health::TaskHandle;

pub async fn run(ctx: Context, handle: TaskHandle) -> TaskResult {
    let cfg = ctx.config.clone();
    let (schedule, tz) = (&cfg.sync.schedule, cfg.sync.timezone);
    let syncer = Syncer::new(Arc::clone(&cfg), &ctx.clients, ctx.metrics.clone())
        .with_health(handle.clone());
    handle.set_detail("holder", json!(syncer.holder));

    // Ready once the state bucket answers: without it no date can be claimed.
    loop {
        match syncer.store.probe().await {
            Ok(()) => break,
            Err(e) => {
                handle.set_not_ready(e.to_string());
                warn!(error = %e, "state bucket not reachable; retrying");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(cfg.sync.poll_interval) => {}
                }
            }
        }
    }
    handle.set_ready();

    // A restart catches up from the last fire time that already passed, never earlier than
    // the schedule would have (the writer may still be filling today's D-1 partitions).
    let mut fired = schedule.previous_before(tz, Utc::now());
    if let Some(prev) = fired {
        cycle(&ctx, &syncer, &handle, prev).await;
    }
    loop {
        let now = Utc::now();
        let Some(next) = schedule.next_after(tz, now) else {
            return Err(format!("schedule `{}` never fires again", schedule.as_str()).into());
        };
        handle.set_detail("next_run", json!(next));
        let retry = match fired {
            Some(f) => next_retry(&ctx, &syncer, f).await,
            None => None,
        };
        handle.set_detail("next_retry", json!(retry));
        let floor = cfg.sync.retry_interval.min(RETRY_FLOOR);
        let (at, wake) = next_wake(next, retry, now, floor);
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        match (wake, fired) {
            (Wake::Retry, Some(f)) => {
                info!("retrying failed or empty dates");
                cycle(&ctx, &syncer, &handle, f).await;
            }
            _ => {
                fired = Some(next);
                cycle(&ctx, &syncer, &handle, next).await;
            }
        }
        if ctx.shutdown.is_cancelled() {
            return Ok(());
        }
    }
}

/// A due retry wakes the scheduler no sooner than this (or `sync.retry_interval`, if
/// shorter) after the last cycle, so a date whose claim cannot be updated (the state bucket is
/// down, the plan fails) is not retried in a tight loop.
const RETRY_FLOOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the scheduler wakes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The schedule fires: a new target date.
    Fire,
    /// A failed or empty date of the last cycle is due again.
    Retry,
}

/// When the scheduler wakes next: the schedule's next fire, or an earlier due retry (not
/// sooner than `floor` from now).
pub(crate) fn next_wake(
    next_fire: DateTime<Utc>,
    next_retry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    floor: std::time::Duration,
) -> (DateTime<Utc>, Wake) {
    let floor = now + chrono::Duration::from_std(floor).unwrap_or_default();
    match next_retry.map(|r| r.max(floor)) {
        Some(r) if r < next_fire => (r, Wake::Retry),
        _ => (next_fire, Wake::Fire),
    }
}

/// The earliest retry among the dates the cycle fired at `fired_at` covers.
async fn next_retry(
    ctx: &Context,
    syncer: &Syncer,
    fired_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let s = &ctx.config.sync;
    let target = plan::target_date(fired_at, s.timezone, s.lag_days);
    match dates_to_run(&syncer.store, target, s.catch_up_days, s.max_attempts.get()).await {
        Ok(c) => c.next_retry,
        Err(e) => {
            warn!(error = %e, "cannot read claims to schedule retries; retrying at the next cycle");
            None
        }
    }
}

/// One scheduled cycle: the target date for `fired_at` plus missed dates.
async fn cycle(ctx: &Context, syncer: &Syncer, handle: &TaskHandle, fired_at: DateTime<Utc>) {
    let s = &ctx.config.sync;
    let target = plan::target_date(fired_at, s.timezone, s.lag_days);
    let dates =
        match dates_to_run(&syncer.store, target, s.catch_up_days, s.max_attempts.get()).await {
            Ok(c) => {
                // After a restart the gauge starts at 0; the claims remember the last success, so
                // the "no successful sync for 26h" alert does not fire on every deployment.
                if let Some(at) = c.last_success_at {
                    ctx.metrics.sync_succeeded_at(at.timestamp());
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
        summary["at"] = json!(Utc::now());
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
    /// The earliest retry of a failed or empty date in the window (target included).
    pub next_retry: Option<DateTime<Utc>>,
}

/// The target date plus earlier dates in the catch-up window that still need a run.
///
/// Dates after the last successful one are missed dates. With no success in the window (a new
/// deployment) only dates that were already attempted are retried, so a first start does not
/// backfill a week nobody asked for.
pub async fn dates_to_run(
    store: &StateStore,
    target: NaiveDate,
    catch_up_days: u32,
    max_attempts: u32,
) -> Result<CatchUp, StateError> {
    let mut states = Vec::new();
    for back in (1..=catch_up_days).rev() {
        let Some(d) = target.checked_sub_days(Days::new(u64::from(back))) else {
            continue;
        };
        let claim = store.get(d).await?.map(|s| s.claim);
        states.push((d, claim));
    }
    let target_claim = store.get(target).await?.map(|s| s.claim);
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
        .filter(|c| c.retryable(max_attempts))
        .filter_map(|c| c.retry_at.or(Some(c.updated_at)))
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
            Some(c) if c.status == ClaimStatus::Success => false,
            Some(c)
                if matches!(c.status, ClaimStatus::Failed | ClaimStatus::Empty)
                    && !c.retryable(max_attempts) =>
            {
                false
            }
            Some(_) => last_success.is_none_or(|s| *d > s),
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
        assert_eq!(next_wake(fire, None, now, floor), (fire, Wake::Fire));
        assert_eq!(
            next_wake(fire, Some(min(15)), now, floor),
            (min(15), Wake::Retry)
        );
        // Overdue: a minute from now, not at once.
        assert_eq!(
            next_wake(fire, Some(min(-5)), now, floor),
            (min(1), Wake::Retry)
        );
        // A retry due after the next fire is left to that cycle.
        assert_eq!(
            next_wake(fire, Some(fire + chrono::Duration::minutes(1)), now, floor),
            (fire, Wake::Fire)
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

    #[test]
    fn fresh_deployment_does_not_backfill() {
        let earlier = vec![(d(5), None), (d(6), None)];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(7)]);
        let earlier = vec![(d(5), None), (d(6), claim(6, ClaimStatus::Failed, 1))];
        assert_eq!(select_dates(d(7), &earlier, 3), vec![d(6), d(7)]);
    }
}
