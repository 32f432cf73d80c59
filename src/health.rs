//! Readiness and status shared between the tasks and the HTTP server.
//!
//! Each enabled task owns one entry. It is ready when all of these hold:
//! - it has proved it can work (the consumer after a receive, the scheduler after reaching the
//!   state bucket): [`TaskHandle::set_ready`];
//! - its recent outcomes are not mostly failures: `max_consecutive_failures` failed units of
//!   work in a row, or at least `max_failure_ratio` of the last `failure_window` outcomes
//!   (once half the window is filled), make it not ready until successes bring it back;
//! - no check it depends on fails ([`TaskHandle::set_condition`], from the preflight checks);
//! - no operation it has in flight has gone without progress for `stall_after`
//!   ([`TaskHandle::track`]); the watchdog logs a WARN naming the operation and resource.
//!
//! The reason is one readable line. `/livez` never looks at any of this.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::labels::Task;
use crate::metrics::Metrics;

/// When recent outcomes and stalls make a task not ready.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub max_consecutive_failures: u32,
    pub max_failure_ratio: f64,
    /// Outcomes remembered for the ratio.
    pub failure_window: usize,
    pub stall_after: Duration,
}

impl From<&crate::config::ReadinessConfig> for Policy {
    fn from(r: &crate::config::ReadinessConfig) -> Self {
        Policy {
            max_consecutive_failures: r.max_consecutive_failures.get(),
            max_failure_ratio: r.max_failure_ratio,
            failure_window: r.failure_window.get() as usize,
            stall_after: r.stall_after,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_consecutive_failures: 5,
            max_failure_ratio: 0.5,
            failure_window: 20,
            stall_after: Duration::from_secs(120),
        }
    }
}

/// One in-flight operation the watchdog looks at.
#[derive(Debug)]
struct Op {
    operation: &'static str,
    resource: String,
    last_progress: Instant,
    warned: bool,
}

#[derive(Debug, Default)]
struct Entry {
    /// `Err(reason)` until the task proved it can work.
    proved: Option<Result<(), String>>,
    failures_in_a_row: u32,
    last_failure: Option<String>,
    /// The last outcomes, newest last: `true` for a failure.
    recent: VecDeque<bool>,
    /// Failing conditions only: check id → why.
    conditions: BTreeMap<String, String>,
    ops: HashMap<u64, Op>,
    last_activity: Option<DateTime<Utc>>,
    details: serde_json::Map<String, Value>,
}

impl Entry {
    fn not_ready_reason(&self, policy: &Policy, now: Instant) -> Option<String> {
        if let Some(op) = self
            .ops
            .values()
            .filter(|op| now.duration_since(op.last_progress) >= policy.stall_after)
            .min_by_key(|op| op.last_progress)
        {
            return Some(format!(
                "stalled: {} {} made no progress for {}",
                op.operation,
                op.resource,
                humantime::format_duration(round_secs(now.duration_since(op.last_progress)))
            ));
        }
        if let Some((id, why)) = self.conditions.iter().next() {
            return Some(format!("check {id} failed: {why}"));
        }
        let last = || self.last_failure.as_deref().unwrap_or("unknown");
        if self.failures_in_a_row >= policy.max_consecutive_failures {
            return Some(format!(
                "{} failures in a row, no success since; last: {}",
                self.failures_in_a_row,
                last()
            ));
        }
        let failed = self.recent.iter().filter(|f| **f).count();
        let seen = self.recent.len();
        if seen * 2 >= policy.failure_window
            && seen > 0
            && failed as f64 >= policy.max_failure_ratio * seen as f64
        {
            return Some(format!(
                "{failed} of the last {seen} outcomes failed; last: {}",
                last()
            ));
        }
        match &self.proved {
            Some(Ok(())) => None,
            Some(Err(reason)) => Some(reason.clone()),
            None => Some("starting".into()),
        }
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// What `/status` shows for one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<DateTime<Utc>>,
    pub failures_in_a_row: u32,
    /// Task-specific details (last and next run, counters...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, Value>,
}

/// The registry of task health, cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Mutex<BTreeMap<Task, Entry>>>,
    /// The last preflight checks, as `/status` shows them.
    checks: Arc<Mutex<Value>>,
    policy: Policy,
    started: Instant,
    next_op: Arc<AtomicU64>,
    /// Mirrors readiness into `s3_reconciler_task_ready{task}`.
    metrics: Option<Metrics>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new(Policy::default(), None)
    }
}

impl Health {
    pub fn new(policy: Policy, metrics: Option<Metrics>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(BTreeMap::new())),
            checks: Arc::new(Mutex::new(Value::Null)),
            policy,
            started: Instant::now(),
            next_op: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Task, Entry>> {
        // Every update is a single field change, so a panic while holding the lock cannot leave
        // an entry half-written: a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Recomputes `task`'s readiness into the gauge.
    fn export(&self, task: Task, entry: &Entry) {
        if let Some(m) = &self.metrics {
            let ready = entry
                .not_ready_reason(&self.policy, Instant::now())
                .is_none();
            m.preflight.task_ready(task, ready);
        }
    }

    /// Registers a task, not ready for `reason`, and returns its handle.
    pub(crate) fn register(&self, task: Task, reason: &str) -> TaskHandle {
        let entry = Entry {
            proved: Some(Err(reason.to_string())),
            ..Entry::default()
        };
        self.export(task, &entry);
        self.lock().insert(task, entry);
        TaskHandle {
            health: self.clone(),
            task,
        }
    }

    /// Tasks not ready, with their reasons; empty when the process is ready.
    pub fn not_ready(&self) -> BTreeMap<Task, String> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter_map(|(t, e)| e.not_ready_reason(&self.policy, now).map(|r| (*t, r)))
            .collect()
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<Task, TaskStatus> {
        let now = Instant::now();
        self.lock()
            .iter()
            .map(|(t, e)| {
                let reason = e.not_ready_reason(&self.policy, now);
                (
                    *t,
                    TaskStatus {
                        ready: reason.is_none(),
                        reason,
                        last_activity: e.last_activity,
                        failures_in_a_row: e.failures_in_a_row,
                        details: e.details.clone(),
                    },
                )
            })
            .collect()
    }

    /// Replaces the preflight checks shown in `/status`.
    pub(crate) fn set_checks(&self, checks: Value) {
        *self.checks.lock().unwrap_or_else(|p| p.into_inner()) = checks;
    }

    pub fn checks(&self) -> Value {
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Logs a WARN once for each operation that has just stalled, and keeps the readiness
    /// gauge current (a stall makes a task not ready without any task code running).
    pub(crate) fn check_stalls(&self) {
        let now = Instant::now();
        let mut map = self.lock();
        for (task, entry) in map.iter_mut() {
            for op in entry.ops.values_mut() {
                let idle = now.duration_since(op.last_progress);
                if idle >= self.policy.stall_after && !op.warned {
                    op.warned = true;
                    warn!(task = %task, operation = op.operation, resource = %op.resource,
                          idle = %humantime::format_duration(round_secs(idle)),
                          "work in flight is making no progress; the task is not ready until it does");
                }
            }
            self.export(*task, entry);
        }
    }

    /// Runs [`Health::check_stalls`] every second until `stop`.
    pub async fn watchdog(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.check_stalls(),
            }
        }
    }
}

/// One task's view of its own health entry.
#[derive(Clone)]
pub struct TaskHandle {
    health: Health,
    task: Task,
}

impl TaskHandle {
    fn update(&self, f: impl FnOnce(&mut Entry)) {
        let mut map = self.health.lock();
        if let Some(e) = map.get_mut(&self.task) {
            f(e);
            self.health.export(self.task, e);
        }
    }

    /// The task has proved it can work.
    pub(crate) fn set_ready(&self) {
        self.update(|e| e.proved = Some(Ok(())));
    }

    /// The task cannot work at all right now (the queue cannot be reached...).
    pub(crate) fn set_not_ready(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.update(|e| e.proved = Some(Err(reason)));
    }

    /// A unit of work (a message, a date) ended well: clears the failure streak.
    pub(crate) fn record_success(&self) {
        let window = self.health.policy.failure_window;
        self.update(|e| {
            e.failures_in_a_row = 0;
            remember(&mut e.recent, false, window);
            e.last_activity = Some(Utc::now());
        });
    }

    /// A unit of work failed for `reason` (one line: operation, resource, kind, message).
    pub(crate) fn record_failure(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let window = self.health.policy.failure_window;
        self.update(|e| {
            e.failures_in_a_row = e.failures_in_a_row.saturating_add(1);
            e.last_failure = Some(reason);
            remember(&mut e.recent, true, window);
            e.last_activity = Some(Utc::now());
        });
    }

    /// Sets check `id` as passing (`Ok`) or failing with a reason.
    pub(crate) fn set_condition(&self, id: &str, state: Result<(), String>) {
        self.update(|e| match state {
            Ok(()) => {
                e.conditions.remove(id);
            }
            Err(why) => {
                e.conditions.insert(id.to_string(), why);
            }
        });
    }

    pub(crate) fn touch(&self) {
        self.update(|e| e.last_activity = Some(Utc::now()));
    }

    pub(crate) fn set_detail(&self, key: &str, value: Value) {
        self.update(|e| {
            e.details.insert(key.to_string(), value);
        });
    }

    /// Registers `operation` on `resource` as in flight until the returned guard is dropped.
    pub(crate) fn track(&self, operation: &'static str, resource: impl Into<String>) -> Tracked {
        let id = self.health.next_op.fetch_add(1, Ordering::Relaxed);
        let op = Op {
            operation,
            resource: resource.into(),
            last_progress: Instant::now(),
            warned: false,
        };
        self.update(|e| {
            e.ops.insert(id, op);
        });
        Tracked {
            handle: self.clone(),
            id,
        }
    }
}

fn remember(recent: &mut VecDeque<bool>, failed: bool, window: usize) {
    recent.push_back(failed);
    while recent.len() > window {
        recent.pop_front();
    }
}

/// An operation in flight; dropping it tells the watchdog it is over.
pub(crate) struct Tracked {
    handle: TaskHandle,
    id: u64,
}

impl Tracked {
    /// The operation moved forward (a page arrived, a status was read).
    pub fn progress(&self) {
        self.handle.update(|e| {
            if let Some(op) = e.ops.get_mut(&self.id) {
                op.last_progress = Instant::now();
                op.warned = false;
            }
        });
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let id = self.id;
        self.handle.update(|e| {
            e.ops.remove(&id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32, stall_ms: u64) -> (Health, Metrics) {
        let m = Metrics::new().unwrap();
        let h = Health::new(
            Policy {
                max_consecutive_failures: failures,
                stall_after: Duration::from_millis(stall_ms),
                ..Policy::default()
            },
            Some(m.clone()),
        );
        (h, m)
    }

    fn gauge(m: &Metrics, t: Task) -> i64 {
        m.preflight.ready(t)
    }

    #[test]
    fn failures_in_a_row_make_a_task_not_ready_until_a_success() {
        let (h, m) = health(3, 60_000);
        let t = h.register(Task::Purge, "waiting for the first receive");
        assert_eq!(h.not_ready()[&Task::Purge], "waiting for the first receive");
        t.set_ready();
        assert!(h.not_ready().is_empty());
        assert_eq!(gauge(&m, Task::Purge), 1);
        t.record_failure("x");
        t.record_failure("y");
        assert!(
            h.not_ready().is_empty(),
            "two failures are below the threshold"
        );
        t.record_failure("ListObjectVersions s3://b/k: access_denied: Access Denied");
        assert_eq!(
            h.not_ready()[&Task::Purge],
            "3 failures in a row, no success since; last: ListObjectVersions s3://b/k: access_denied: Access Denied"
        );
        assert_eq!(gauge(&m, Task::Purge), 0);
        t.record_success();
        assert!(h.not_ready().is_empty());
        assert_eq!(gauge(&m, Task::Purge), 1);
    }

    #[test]
    fn half_of_recent_outcomes_failing_makes_a_task_not_ready() {
        let (h, _) = health(5, 60_000);
        let t = h.register(Task::Purge, "starting");
        t.set_ready();
        // Alternating: never two failures in a row, but half of everything fails.
        for i in 0..9 {
            if i % 2 == 1 {
                t.record_failure("GetObject s3://b/k: throttling: SlowDown");
            } else {
                t.record_success();
            }
            assert!(
                h.not_ready().is_empty(),
                "fewer than half the window seen ({i})"
            );
        }
        t.record_success();
        assert!(h.not_ready().is_empty(), "4 of 10 failed");
        t.record_failure("GetObject s3://b/k: throttling: SlowDown");
        t.record_failure("GetObject s3://b/k: throttling: SlowDown");
        assert_eq!(
            h.not_ready()[&Task::Purge],
            "6 of the last 12 outcomes failed; last: GetObject s3://b/k: throttling: SlowDown"
        );
        for _ in 0..8 {
            t.record_success();
        }
        assert!(h.not_ready().is_empty(), "6 of 20 failed");
    }

    #[test]
    fn a_failing_condition_names_the_check() {
        let (h, _) = health(3, 60_000);
        let t = h.register(Task::Sync, "starting");
        t.set_ready();
        t.set_condition(
            "datasync.schedule",
            Err("the task has its own schedule".into()),
        );
        assert_eq!(
            h.not_ready()[&Task::Sync],
            "check datasync.schedule failed: the task has its own schedule"
        );
        t.set_condition("datasync.schedule", Ok(()));
        assert!(h.not_ready().is_empty());
    }

    #[test]
    fn a_stalled_operation_makes_the_task_not_ready_until_it_moves_or_ends() {
        let (h, m) = health(3, 400);
        let t = h.register(Task::Purge, "starting");
        t.set_ready();
        let op = t.track("ListObjectVersions", "s3://tgt/a.txt");
        assert!(h.not_ready().is_empty());
        std::thread::sleep(Duration::from_millis(500));
        h.check_stalls();
        let reason = &h.not_ready()[&Task::Purge];
        assert!(
            reason.starts_with("stalled: ListObjectVersions s3://tgt/a.txt made no progress"),
            "{reason}"
        );
        assert_eq!(gauge(&m, Task::Purge), 0, "the watchdog updates the gauge");
        op.progress();
        assert!(h.not_ready().is_empty());
        std::thread::sleep(Duration::from_millis(500));
        assert!(!h.not_ready().is_empty());
        drop(op);
        assert!(h.not_ready().is_empty());
    }
}
