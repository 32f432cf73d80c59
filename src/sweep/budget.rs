//! A sweep run's record in the state bucket, and the `max_deletes` budget it carries.
//!
//! One document per kind and set of prefixes (`sweeps/runs/<kind>-<hash>.json`) says which run
//! is current, whether it completed, and how many keys it has reserved for deletion. A run
//! that did not complete (a crash, an eviction, a shutdown, another replica still at it) is
//! joined by the next sweep of the same prefixes instead of starting afresh, so its budget
//! holds across restarts: every key is reserved in this document, with a conditional write,
//! before its deletion is sent. Reservations are taken a few at a time; what a process did not
//! use is given back when it ends, and lost if it is killed (the budget only ever shrinks).
//! The run's other guardrail state lives there too: once a delete fails, the run deletes
//! nothing more, in this process or any that joins it; and a key whose decision failed keeps
//! the run from reporting itself completed.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex as AsyncMutex;
use tracing::{info, warn};

use super::lease::RunKind;
use crate::store::{JsonStore, StoreError, Written};

/// Attempts at a conditional write of the run document before giving up on it.
const WRITE_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunStatus {
    Running,
    Completed,
}

/// The run document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Run {
    pub run_id: String,
    pub kind: RunKind,
    pub prefixes: Vec<String>,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// `sweep.max_deletes` when the run started.
    pub max_deletes: u32,
    /// Keys reserved for deletion so far (each before its deletion was sent).
    #[serde(default)]
    pub reserved: u32,
    /// The first delete error: from then on the run deletes nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Keys whose decision failed (a listing error, say): the run cannot say it completed.
    #[serde(default)]
    pub failed: u32,
}

/// What a sweep does about the run document it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAction {
    /// None, or the last one completed: a new run.
    Start,
    /// A run that did not complete: carry on with it, and with what is left of its budget.
    Join,
}

/// The run state machine (pure).
pub(crate) fn next_run_action(run: Option<&Run>) -> RunAction {
    match run {
        Some(r) if r.status == RunStatus::Running => RunAction::Join,
        _ => RunAction::Start,
    }
}

/// The run document's name under the state prefix: one per kind and set of prefixes.
pub fn name(kind: RunKind, prefixes: &[String]) -> String {
    let mut sorted: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in sorted {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let kind = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!("sweeps/runs/{kind}-{h:016x}.json")
}

/// The current run, held by this process: its budget and its end.
pub(crate) struct RunHandle {
    store: JsonStore,
    name: String,
    doc: AsyncMutex<(Run, String)>,
    /// Reserved in the document and not yet used by this process.
    local: Mutex<u32>,
    /// How many to reserve at once.
    block: u32,
    /// Set once a delete failed in the run (here or in a process before).
    stopped: Arc<AtomicBool>,
    run_id: String,
}

impl RunHandle {
    /// Joins the current run of `prefixes`, or starts one.
    pub async fn open(
        store: &JsonStore,
        kind: RunKind,
        prefixes: &[String],
        max_deletes: u32,
        block: u32,
    ) -> Result<RunHandle, StoreError> {
        let name = name(kind, prefixes);
        for _ in 0..WRITE_ATTEMPTS {
            let stored = store.get::<Run>(&name).await?;
            if next_run_action(stored.as_ref().map(|s| &s.value)) == RunAction::Join
                && let Some(s) = stored
            {
                info!(run_id = %s.value.run_id, reserved = s.value.reserved,
                      max_deletes = s.value.max_deletes, "joining a sweep run that did not complete");
                return Ok(Self::held(store, name, s.value, s.etag, block));
            }
            let now = Utc::now();
            let run = Run {
                run_id: uuid::Uuid::new_v4().simple().to_string(),
                kind,
                prefixes: prefixes.to_vec(),
                status: RunStatus::Running,
                started_at: now,
                updated_at: now,
                completed_at: None,
                max_deletes,
                reserved: 0,
                stopped: None,
                failed: 0,
            };
            let written = match &stored {
                Some(s) => store.update(&name, &run, &s.etag).await?,
                None => store.create(&name, &run).await?,
            };
            if let Written::Ok { etag } = written {
                return Ok(Self::held(store, name, run, etag, block));
            }
        }
        Err(StoreError::Contended {
            uri: store.uri(&name),
        })
    }

    fn held(store: &JsonStore, name: String, run: Run, etag: String, block: u32) -> RunHandle {
        RunHandle {
            store: store.clone(),
            name,
            stopped: Arc::new(AtomicBool::new(run.stopped.is_some())),
            run_id: run.run_id.clone(),
            doc: AsyncMutex::new((run, etag)),
            local: Mutex::new(0),
            block: block.max(1),
        }
    }

    /// The run's stop flag: set once a delete failed; checked before every deletion is sent.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stopped.clone()
    }

    /// A delete failed: nothing more is deleted in this run, by anyone. Recorded at once.
    pub async fn stop(&self, reason: String) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        self.amend(|r| {
            r.stopped.get_or_insert(reason.clone());
        })
        .await;
    }

    /// A key's decision failed: the run will not report itself completed. Recorded at once.
    pub async fn decision_failed(&self) {
        self.amend(|r| r.failed += 1).await;
    }

    /// What the run as a whole has come to, beyond this process: `StoppedAfterError` once a
    /// delete or a decision failed in it.
    pub async fn carried(&self) -> Option<crate::labels::SweepResult> {
        let doc = self.doc.lock().await;
        (doc.0.stopped.is_some() || doc.0.failed > 0)
            .then_some(crate::labels::SweepResult::StoppedAfterError)
    }

    /// Applies `change` to the run document, with conditional writes (re-reading on a
    /// conflict). Best effort: a failure is logged, the in-memory state still changes.
    async fn amend(&self, change: impl Fn(&mut Run)) {
        let mut doc = self.doc.lock().await;
        for _ in 0..WRITE_ATTEMPTS {
            let (run, etag) = &mut *doc;
            let mut next = run.clone();
            change(&mut next);
            next.updated_at = Utc::now();
            match self.store.update(&self.name, &next, etag).await {
                Ok(Written::Ok { etag: t }) => {
                    *run = next;
                    *etag = t;
                    return;
                }
                Ok(Written::Conflict) => match self.store.get::<Run>(&self.name).await {
                    Ok(Some(s)) if s.value.run_id == run.run_id => {
                        *run = s.value;
                        *etag = s.etag;
                    }
                    _ => break,
                },
                Err(e) => {
                    warn!(error = %e, "cannot record in the sweep run");
                    break;
                }
            }
        }
        change(&mut doc.0);
    }

    pub async fn run_id(&self) -> String {
        self.run_id.clone()
    }

    fn local(&self) -> std::sync::MutexGuard<'_, u32> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves one key for deletion; `false` once the run's budget is used up (or cannot be
    /// recorded: nothing is deleted on a reservation that is not written down).
    pub async fn reserve(&self) -> bool {
        {
            let mut local = self.local();
            if *local > 0 {
                *local -= 1;
                return true;
            }
        }
        let mut doc = self.doc.lock().await;
        // Another task may have reserved a block while this one waited.
        {
            let mut local = self.local();
            if *local > 0 {
                *local -= 1;
                return true;
            }
        }
        for _ in 0..WRITE_ATTEMPTS {
            let (run, etag) = &mut *doc;
            if run.stopped.is_some() {
                self.stopped.store(true, Ordering::SeqCst);
                return false;
            }
            let left = run.max_deletes.saturating_sub(run.reserved);
            if left == 0 {
                return false;
            }
            let n = left.min(self.block);
            let mut next = run.clone();
            next.reserved += n;
            next.updated_at = Utc::now();
            match self.store.update(&self.name, &next, etag).await {
                Ok(Written::Ok { etag: t }) => {
                    *run = next;
                    *etag = t;
                    *self.local() += n - 1;
                    return true;
                }
                Ok(Written::Conflict) => match self.store.get::<Run>(&self.name).await {
                    Ok(Some(s)) if s.value.run_id == run.run_id => {
                        *run = s.value;
                        *etag = s.etag;
                    }
                    Ok(_) => {
                        warn!("the sweep run was replaced by another; reserving nothing more");
                        return false;
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot re-read the sweep run; reserving nothing more");
                        return false;
                    }
                },
                Err(e) => {
                    warn!(error = %e, "cannot record a reservation in the sweep run; deleting nothing more");
                    return false;
                }
            }
        }
        false
    }

    /// Reads the run document again: a delete that failed in another replica since stops
    /// this one too (its unused reservations with it). The shards' walks call it at each
    /// checkpoint. It takes no lock: a walk's own decisions, which it is not polling while it
    /// waits here, may hold the document's (the next reservation re-reads it anyway).
    pub async fn refresh(&self) {
        match self.store.get::<Run>(&self.name).await {
            Ok(Some(s)) if s.value.run_id == self.run_id => {
                if s.value.stopped.is_some() && !self.stopped.swap(true, Ordering::SeqCst) {
                    warn!(reason = ?s.value.stopped, "a delete failed elsewhere in the sweep run; deleting nothing more");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot re-read the sweep run"),
        }
    }

    /// A reserved key was not deleted after all: its reservation serves the next one.
    pub fn release(&self) {
        *self.local() += 1;
    }

    /// Gives back what this process reserved and did not use, and marks the run completed
    /// when `completed`.
    pub async fn finish(&self, completed: bool) {
        let unused = std::mem::take(&mut *self.local());
        if unused == 0 && !completed {
            return;
        }
        self.amend(|r| {
            r.reserved = r.reserved.saturating_sub(unused);
            if completed {
                r.status = RunStatus::Completed;
                r.completed_at = Some(Utc::now());
            }
        })
        .await;
    }

    /// Keys reserved by the run so far, across every process that took part.
    pub async fn reserved(&self) -> u32 {
        self.doc.lock().await.0.reserved
    }
}

/// How long a reservation block lasts at most: it is written before any of its deletions.
pub(crate) fn block_for(concurrency: usize) -> u32 {
    u32::try_from(concurrency.clamp(1, 64)).unwrap_or(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: RunStatus) -> Run {
        Run {
            run_id: "r".into(),
            kind: RunKind::Purge,
            prefixes: vec!["a/".into()],
            status,
            started_at: Utc::now(),
            updated_at: Utc::now(),
            completed_at: None,
            max_deletes: 10,
            reserved: 3,
            stopped: None,
            failed: 0,
        }
    }

    #[test]
    fn an_unfinished_run_is_joined_and_a_finished_one_replaced() {
        assert_eq!(next_run_action(None), RunAction::Start);
        assert_eq!(
            next_run_action(Some(&run(RunStatus::Running))),
            RunAction::Join
        );
        assert_eq!(
            next_run_action(Some(&run(RunStatus::Completed))),
            RunAction::Start
        );
    }

    #[test]
    fn run_names_depend_on_kind_and_the_set_of_prefixes() {
        let ab = vec!["a/".to_string(), "b/".to_string()];
        let ba = vec!["b/".to_string(), "a/".to_string()];
        assert_eq!(name(RunKind::Purge, &ab), name(RunKind::Purge, &ba));
        assert_ne!(name(RunKind::Purge, &ab), name(RunKind::Report, &ab));
        assert_ne!(
            name(RunKind::Purge, &ab),
            name(RunKind::Purge, &["a/b/".to_string()])
        );
        assert!(name(RunKind::DryRun, &ab).starts_with("sweeps/runs/dry-run-"));
    }
}
