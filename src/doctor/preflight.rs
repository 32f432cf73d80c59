//! The doctor's checks inside `run`: at start-up and every `preflight.interval` (every minute
//! while one fails), so a fix is noticed without a restart. A failing check is logged with its
//! fix, exported per check id, shown in `/status`, and makes every task that depends on it not
//! ready (`/readyz` 503 naming the check); the process keeps running.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tracing::{info, warn};

use super::Doctor;
use super::checks::dependents;
use super::render::healthy;
use crate::context::{Context, TaskResult};
use crate::health::TaskHandle;
use crate::labels::{CheckId, CheckStatus, Task};

/// How soon the checks run again while one fails.
const RECHECK_FAILING: Duration = Duration::from_secs(60);

pub async fn run(ctx: Context, tasks: Vec<(Task, TaskHandle)>) -> TaskResult {
    let doctor = Doctor::new(
        Arc::clone(&ctx.config),
        ctx.clients.clone(),
        ctx.metrics.clone(),
    );
    let mut previous: HashMap<CheckId, CheckStatus> = HashMap::new();
    loop {
        let checks = doctor.run().await;
        for c in &checks {
            ctx.metrics.preflight.checked(c.check, c.status);
            let was = previous.get(&c.check).copied();
            match (c.status, was) {
                (CheckStatus::Fail, _) => {
                    warn!(check = %c.check, resource = %c.resource, detail = %c.detail,
                    fix = c.fix.as_deref().unwrap_or(""), "preflight check failed")
                }
                (CheckStatus::Warn, w) if w != Some(CheckStatus::Warn) => info!(check = %c.check,
                    resource = %c.resource, detail = %c.detail, fix = c.fix.as_deref().unwrap_or(""),
                    "preflight check warns"),
                (CheckStatus::Pass, Some(CheckStatus::Fail)) => {
                    info!(check = %c.check, "preflight check passes again")
                }
                _ => {}
            }
            for (task, handle) in &tasks {
                if dependents(c.check, &ctx.config).contains(task) {
                    let state = match c.status {
                        CheckStatus::Fail => Err(format!(
                            "{} ({})",
                            c.detail,
                            c.fix.as_deref().unwrap_or("see s3-reconciler doctor")
                        )),
                        CheckStatus::Pass | CheckStatus::Warn => Ok(()),
                    };
                    handle.set_condition(c.check.label(), state);
                }
            }
        }
        previous = checks.iter().map(|c| (c.check, c.status)).collect();
        ctx.health
            .set_checks(json!({"at": chrono::Utc::now(), "checks": checks}));
        ctx.metrics.preflight.ran_at(chrono::Utc::now().timestamp());
        // A failing check is looked at again soon: a fix (or the end of a network blip) should
        // not wait an hour to make the task ready again.
        let interval = ctx.config.preflight.interval;
        let wait = match healthy(&checks) {
            true => interval,
            false => interval.min(RECHECK_FAILING),
        };
        if ctx
            .shutdown
            .run_until_cancelled(tokio::time::sleep(wait))
            .await
            .is_none()
        {
            return Ok(());
        }
    }
}
