//! Readiness and status shared between the tasks and the HTTP server.
//!
//! Each enabled task owns one entry: it starts not ready with a reason, and the task flips it
//! when it has proved it can work (the SQS consumer after a successful receive, the scheduler
//! after its first plan). `/readyz` is 200 only when every entry is ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct TaskHealth {
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<DateTime<Utc>>,
    /// Task-specific details shown on `/status` (last and next run, counters...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, Value>,
}

/// The registry of task health, cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Mutex<BTreeMap<&'static str, TaskHealth>>>,
    started: Instant,
    /// Mirrors readiness into `s3_reconciler_task_ready{task}` for alerting.
    gauge: Option<prometheus::IntGaugeVec>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(BTreeMap::new())),
            started: Instant::now(),
            gauge: None,
        }
    }

    /// A registry whose readiness changes are also exported as a gauge.
    pub fn with_gauge(gauge: prometheus::IntGaugeVec) -> Self {
        Self {
            gauge: Some(gauge),
            ..Self::new()
        }
    }

    fn export(&self, task: &str, ready: bool) {
        if let Some(g) = &self.gauge {
            g.with_label_values(&[task]).set(i64::from(ready));
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, TaskHealth>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts),
        // so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a task, not ready, and returns its handle.
    pub fn register(&self, task: &'static str, reason: &str) -> TaskHandle {
        self.lock().insert(
            task,
            TaskHealth {
                ready: false,
                reason: Some(reason.to_string()),
                last_activity: None,
                details: serde_json::Map::new(),
            },
        );
        self.export(task, false);
        TaskHandle {
            health: self.clone(),
            task,
        }
    }

    /// Tasks not ready, with their reasons; empty when the process is ready.
    pub fn not_ready(&self) -> BTreeMap<&'static str, String> {
        self.lock()
            .iter()
            .filter(|(_, h)| !h.ready)
            .map(|(k, h)| (*k, h.reason.clone().unwrap_or_default()))
            .collect()
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, TaskHealth> {
        self.lock().clone()
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// One task's view of its own health entry.
#[derive(Clone)]
pub struct TaskHandle {
    health: Health,
    task: &'static str,
}

impl TaskHandle {
    fn update(&self, f: impl FnOnce(&mut TaskHealth)) {
        if let Some(h) = self.health.lock().get_mut(self.task) {
            f(h);
        }
    }

    pub fn set_ready(&self) {
        self.update(|h| {
            h.ready = true;
            h.reason = None;
        });
        self.health.export(self.task, true);
    }

    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.update(|h| {
            h.ready = false;
            h.reason = Some(reason);
        });
        self.health.export(self.task, false);
    }

    pub fn touch(&self) {
        self.update(|h| h.last_activity = Some(Utc::now()));
    }

    pub fn set_detail(&self, key: &str, value: Value) {
        self.update(|h| {
            h.details.insert(key.to_string(), value);
        });
    }
}
