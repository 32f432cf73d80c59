//! The preflight checks (the doctor's, inside the daemon) and the tasks' readiness.

use prometheus::IntGauge;

use super::family::{Gauges, Gauges2, Registrar};
use crate::labels::{CheckId, CheckStatus, Task};

#[derive(Clone)]
pub struct PreflightMetrics {
    /// Sparse: a check that does not run in this configuration has no series (zeros would
    /// read as "neither pass nor fail").
    checks: Gauges2<CheckId, CheckStatus>,
    last_run: IntGauge,
    task_ready: Gauges<Task>,
}

impl PreflightMetrics {
    pub(crate) fn register(r: &mut Registrar) -> Result<Self, prometheus::Error> {
        Ok(PreflightMetrics {
            checks: r.sparse_gauges2(
                "preflight_check",
                "1 for the status each preflight check last had (pass, warn, fail), else 0.",
                ["check", "status"],
            )?,
            last_run: r.gauge(
                "preflight_last_run_timestamp_seconds",
                "Unix time the preflight checks last ran.",
            )?,
            task_ready: r.sparse_gauges(
                "task_ready",
                "1 when the task is ready, else 0; absent when the task is disabled.",
                "task",
            )?,
        })
    }

    /// A check's status, one-hot over the statuses.
    pub(crate) fn checked(&self, check: CheckId, status: CheckStatus) {
        for s in CheckStatus::ALL {
            self.checks.set(check, *s, i64::from(*s == status));
        }
    }

    pub(crate) fn ran_at(&self, unix_seconds: i64) {
        self.last_run.set(unix_seconds);
    }

    pub(crate) fn task_ready(&self, task: Task, ready: bool) {
        self.task_ready.set(task, i64::from(ready));
    }

    /// 1 when `check`'s last status was `status`.
    pub fn status(&self, check: CheckId, status: CheckStatus) -> i64 {
        self.checks.get(check, status)
    }

    pub fn ready(&self, task: Task) -> i64 {
        self.task_ready.get(task)
    }

    pub fn last_run(&self) -> i64 {
        self.last_run.get()
    }
}
