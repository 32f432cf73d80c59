//! The sweep task: runs on `sweep.schedule` (in `sweep.timezone`, else `sync.timezone`) with
//! `sweep.action`, and resumes an interrupted run at start-up.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, warn};

use super::lease::{self, LeaseStatus, RunKind};
use super::report::{json_line, kept_summary};
use super::shard::Layout;
use super::sweeper::Sweeper;
use crate::config::SweepAction;
use crate::context::{Context, TaskResult};
use crate::health::TaskHandle;

pub async fn run(ctx: Context, handle: TaskHandle) -> TaskResult {
    let cfg = ctx.config.clone();
    let sw = &cfg.sweep;
    let tz = sw.timezone.unwrap_or(cfg.sync.timezone);
    let sweeper = Sweeper::new(Arc::clone(&cfg), &ctx.clients, ctx.metrics.clone())
        .with_health(handle.clone());
    handle.set_detail("holder", json!(sweeper.holder));
    let every = std::time::Duration::from_secs(10);
    if !sweeper
        .store()
        .wait_until_reachable(&handle, &ctx.clock, every, &ctx.shutdown)
        .await
    {
        return Ok(());
    }
    // The leases remember what earlier processes did: the last time every prefix completed
    // (so the "no completed sweep" alert survives a restart), and runs left unfinished.
    let mut completed: Vec<Option<DateTime<Utc>>> = Vec::new();
    let mut interrupted = false;
    for p in &sw.prefixes {
        match sweeper.store().get::<Layout>(&lease::name(p)).await {
            Ok(Some(l)) => {
                completed.push(l.value.completed_at);
                interrupted |= l.value.status == LeaseStatus::Running;
            }
            Ok(None) => completed.push(None),
            Err(e) => warn!(error = %e, "cannot read a sweep lease"),
        }
    }
    if let Some(Some(all_done)) = completed.iter().copied().min() {
        ctx.metrics.sweep.last_completed_at(all_done.timestamp());
    }
    if interrupted {
        info!("a sweep was interrupted; resuming it now");
        cycle(&ctx, &sweeper, &handle).await;
    }
    loop {
        let Some(next) = sw.schedule.next_after(tz, Utc::now()) else {
            return Err(format!(
                "sweep schedule `{}` never fires again",
                sw.schedule.as_str()
            )
            .into());
        };
        handle.set_detail("next_run", json!(next));
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        if ctx
            .shutdown
            .run_until_cancelled(tokio::time::sleep(wait))
            .await
            .is_none()
        {
            return Ok(());
        }
        cycle(&ctx, &sweeper, &handle).await;
        if ctx.shutdown.is_cancelled() {
            return Ok(());
        }
    }
}

async fn cycle(ctx: &Context, sweeper: &Sweeper, handle: &TaskHandle) {
    let sw = &ctx.config.sweep;
    let kind = match sw.action {
        SweepAction::Report => RunKind::Report,
        SweepAction::Purge => RunKind::Purge,
    };
    handle.touch();
    let summary = sweeper
        .run(&sw.prefixes, kind, &ctx.shutdown, &|line| {
            info!(target: "s3_reconciler::sweep", line = %json_line(line), key = %line.orphan.key,
                  action = ?line.action, reason = ?line.reason, "sweep orphan");
        })
        .await;
    let s = &summary.stats;
    info!(target: "s3_reconciler::sweep", result = %summary.result, scanned_source = s.scanned_source,
          scanned_target = s.scanned_target, orphans = s.orphans, purged = s.purged,
          would_purge = s.would_purge, kept = %kept_summary(&s.kept),
          duration_seconds = summary.duration_seconds, "sweep run ended");
    let mut detail = serde_json::to_value(&summary).unwrap_or_default();
    detail["at"] = json!(Utc::now());
    handle.set_detail("last_run", detail);
}
