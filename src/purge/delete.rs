//! Deleting target entries, the only place the daemon deletes anything.
//!
//! Entries decided for many keys are packed into DeleteObjects requests of at most 1,000
//! entries. A request waits for the keys that were being decided when its first deletion came
//! ([`Deciding`]) to hand in theirs, at most [`MAX_LINGER`]: keys decided together (a burst, a
//! sweep, the messages received together) travel together, and a lone key goes at once. Every
//! entry is audited twice on target `s3_reconciler::audit`: `deleting` with the request's
//! `batch_id` *before* the request is sent, then `delete` (deleted) or `delete_failed` with the
//! per-entry error. Whenever the process dies, every deleted version has at least its intent
//! line. Every per-entry error is checked; an entry DeleteObjects reports neither way is a
//! failure too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tracing::error;

use super::audit::{AuditAction, AuditLine, Origin};
use crate::aws::AwsError;
use crate::aws::s3::{Bucket, DELETE_BATCH, DeleteReport, Entry, EntryError, xml_safe};
use crate::labels::{EntryKind, ErrorKind};
use crate::metrics::Metrics;

/// The longest a request waits for keys still being decided: about two S3 round trips. It
/// holds no slot (a message gives its slot back once its deletions are handed over), and at
/// the default concurrency it is what packs ten keys or more into a request.
const MAX_LINGER: Duration = Duration::from_millis(40);

/// Keys being decided whose deletions may still join the next request.
#[derive(Clone, Default)]
pub(crate) struct Deciding {
    inner: Arc<DecidingInner>,
}

#[derive(Default)]
struct DecidingInner {
    next: AtomicU64,
    /// Tickets of the keys being decided.
    active: Mutex<BTreeSet<u64>>,
    changed: Notify,
}

impl Deciding {
    /// A key starts being decided; it is done when the guard is dropped (after its deletion is
    /// handed to the [`Deleter`], or when it needs none). `hold` is released with the guard.
    pub(crate) fn enter(&self, hold: Option<Hold>) -> DecidingGuard {
        let ticket = self.inner.next.fetch_add(1, Ordering::SeqCst);
        self.active().insert(ticket);
        DecidingGuard {
            deciding: self.clone(),
            ticket,
            _hold: hold,
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tickets below this one belong to keys already being decided now.
    fn watermark(&self) -> u64 {
        self.inner.next.load(Ordering::SeqCst)
    }

    /// Whether a key that started being decided before `watermark` still is.
    fn pending_before(&self, watermark: u64) -> bool {
        self.active().first().is_some_and(|t| *t < watermark)
    }
}

/// What a caller keeps only while its key is being decided, such as a consumer's working
/// slot: once the deletion is handed over, the slot can start on another message while the
/// DeleteObjects runs.
pub(crate) type Hold = Box<dyn std::any::Any + Send + Sync>;

/// One key being decided.
pub(crate) struct DecidingGuard {
    deciding: Deciding,
    ticket: u64,
    _hold: Option<Hold>,
}

impl Drop for DecidingGuard {
    fn drop(&mut self) {
        self.deciding.active().remove(&self.ticket);
        self.deciding.inner.changed.notify_waiters();
    }
}

/// DeleteObjects requests in flight at once.
const REQUESTS_IN_FLIGHT: usize = 8;

/// Why target entries were not (all) deleted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeleteError {
    /// The request itself failed: its entries may or may not be deleted.
    #[error("{0}")]
    Request(Arc<AwsError>),
    #[error(
        "deleting s3://{}/{} version {}: {}: {}",
        .0.bucket, .0.key, .0.version_id, .0.code, .0.message
    )]
    Entry(Box<EntryFailure>),
    #[error(
        "deleting s3://{bucket}/{key} version {version_id}: DeleteObjects reported neither success nor error"
    )]
    Unconfirmed {
        bucket: String,
        key: String,
        version_id: String,
    },
    #[error("the deleter of s3://{bucket} stopped")]
    Stopped { bucket: String },
    /// Never sent: the run stopped deleting (an earlier delete failed) while it waited.
    #[error("not sent: deleting was stopped after an earlier failure")]
    Cancelled,
}

impl DeleteError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeleteError::Request(e) => e.kind,
            DeleteError::Entry(f) => crate::aws::classify(Some(&f.code), None),
            DeleteError::Unconfirmed { .. }
            | DeleteError::Stopped { .. }
            | DeleteError::Cancelled => ErrorKind::Other,
        }
    }
}

/// One entry S3 refused to delete, and why.
#[derive(Debug, Clone)]
pub struct EntryFailure {
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub code: String,
    pub message: String,
}

/// A job that did not end with every entry confirmed deleted: the first failure, and the
/// entries that were confirmed (a report counts what was deleted, not what was asked).
#[derive(Debug, Clone)]
pub struct Partial {
    pub error: DeleteError,
    pub confirmed: Vec<Entry>,
}

/// Set when nothing more may be deleted on behalf of a run (the sweep after a delete error):
/// checked when a deletion is handed over and again just before its request is sent.
pub(crate) type StopFlag = Arc<AtomicBool>;

struct Job {
    entries: Vec<Entry>,
    origin: Origin,
    stop: Option<StopFlag>,
    done: oneshot::Sender<Result<(), Partial>>,
}

impl Job {
    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

/// What became of one job's entries so far.
#[derive(Default)]
struct JobResult {
    confirmed: Vec<Entry>,
    error: Option<DeleteError>,
}

impl JobResult {
    fn add(&mut self, entry: &Entry, r: Result<(), DeleteError>) {
        match r {
            Ok(()) => self.confirmed.push(entry.clone()),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    fn finish(self) -> Result<(), Partial> {
        match self.error {
            None => Ok(()),
            Some(error) => Err(Partial {
                error,
                confirmed: self.confirmed,
            }),
        }
    }
}

/// A handle to the task that deletes from one bucket.
#[derive(Clone)]
pub(crate) struct Deleter {
    bucket: String,
    jobs: mpsc::UnboundedSender<Job>,
}

impl Deleter {
    /// Starts the deleting task for `bucket`; it ends when the last handle is dropped.
    /// Must be called within a Tokio runtime.
    pub fn spawn(bucket: Bucket, metrics: Metrics, deciding: Deciding) -> Deleter {
        let (tx, rx) = mpsc::unbounded_channel();
        let name = bucket.name.clone();
        tokio::spawn(run(bucket, metrics, deciding, rx));
        Deleter {
            bucket: name,
            jobs: tx,
        }
    }

    /// Deletes `entries`; resolves once every one of them is confirmed deleted or failed. The
    /// key stops counting as being decided once its entries are queued. Nothing of the job is
    /// sent once `stop` is set.
    pub async fn delete(
        &self,
        entries: Vec<Entry>,
        origin: Origin,
        deciding: DecidingGuard,
        stop: Option<StopFlag>,
    ) -> Result<(), Partial> {
        let stopped = || Partial {
            error: DeleteError::Stopped {
                bucket: self.bucket.clone(),
            },
            confirmed: Vec::new(),
        };
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job {
                entries,
                origin,
                stop,
                done,
            })
            .map_err(|_| stopped())?;
        drop(deciding);
        result.await.map_err(|_| stopped())?
    }
}

async fn run(
    bucket: Bucket,
    metrics: Metrics,
    deciding: Deciding,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    let bucket = Arc::new(bucket);
    let slots = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        let mut n = batch[0].entries.len();
        let deadline = tokio::time::Instant::now() + MAX_LINGER;
        // Wait for the keys being decided as the first job came, not for those after: they
        // would keep a steady flow waiting for ever newer keys.
        let watermark = deciding.watermark();
        loop {
            while n < DELETE_BATCH {
                let Ok(job) = jobs.try_recv() else { break };
                n += job.entries.len();
                batch.push(job);
            }
            // Registered before the count is read, so a key finishing in between wakes us.
            let changed = deciding.inner.changed.notified();
            if n >= DELETE_BATCH || !deciding.pending_before(watermark) {
                break;
            }
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => {
                        n += job.entries.len();
                        batch.push(job);
                    }
                    None => break,
                },
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (bucket, metrics) = (bucket.clone(), metrics.clone());
        tokio::spawn(async move {
            send(&bucket, &metrics, batch).await;
            drop(slot);
        });
    }
}

/// An entry and the index of the job it belongs to.
type Indexed<'a> = (usize, &'a Entry);

/// Sends one gathered batch as requests of at most [`DELETE_BATCH`] entries and answers
/// every job. A key a DeleteObjects body cannot carry goes on its own, with DeleteObject.
async fn send(bucket: &Bucket, metrics: &Metrics, jobs: Vec<Job>) {
    let mut results: Vec<JobResult> = jobs.iter().map(|_| JobResult::default()).collect();
    let (batched, single): (Vec<Indexed>, Vec<Indexed>) = jobs
        .iter()
        .enumerate()
        .flat_map(|(i, j)| j.entries.iter().map(move |e| (i, e)))
        .partition(|(_, e)| xml_safe(&e.key));
    let requests = (batched.chunks(DELETE_BATCH).map(|c| (c, false)))
        .chain(single.chunks(1).map(|c| (c, true)));
    for (chunk, alone) in requests {
        let chunk = not_stopped(chunk, &jobs, &mut results);
        let Some(&(_, first)) = chunk.first() else {
            continue;
        };
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        for (i, e) in &chunk {
            let action = AuditAction::Deleting {
                batch_id: &batch_id,
            };
            audit(bucket, e, &jobs[*i].origin, action);
        }
        let outcome = match alone {
            true => delete_one(bucket, first).await,
            false => {
                let entries: Vec<&Entry> = chunk.iter().map(|(_, e)| *e).collect();
                bucket.delete_versions(&entries).await
            }
        };
        for (i, entry, result) in confirm(bucket, metrics, &chunk, &jobs, &batch_id, outcome) {
            results[i].add(entry, result);
        }
    }
    for (job, result) in jobs.into_iter().zip(results) {
        let _ = job.done.send(result.finish());
    }
}

/// One entry with DeleteObject, answered as a DeleteObjects request would be: an entry S3
/// refused (a legal hold, a policy) is an entry error, not a failed request.
async fn delete_one(bucket: &Bucket, entry: &Entry) -> Result<DeleteReport, AwsError> {
    match bucket.delete_version(entry).await {
        Ok(()) => Ok(DeleteReport {
            deleted: vec![(entry.key.clone(), entry.version_id.clone())],
            errors: Vec::new(),
        }),
        Err(e) => match &e.code {
            Some(code) => Ok(DeleteReport {
                deleted: Vec::new(),
                errors: vec![EntryError {
                    key: entry.key.clone(),
                    version_id: entry.version_id.clone(),
                    code: code.to_string(),
                    message: e.message.clone(),
                }],
            }),
            None => Err(e),
        },
    }
}

/// The entries of `chunk` whose job may still delete; the others are answered `Cancelled`.
fn not_stopped<'a>(
    chunk: &[(usize, &'a Entry)],
    jobs: &[Job],
    results: &mut [JobResult],
) -> Vec<(usize, &'a Entry)> {
    let mut keep = Vec::with_capacity(chunk.len());
    for &(i, e) in chunk {
        if jobs[i].stopped() {
            results[i].add(e, Err(DeleteError::Cancelled));
        } else {
            keep.push((i, e));
        }
    }
    keep
}

/// Audits and counts each entry of one request; returns each entry's result by job index.
fn confirm<'a>(
    bucket: &Bucket,
    metrics: &Metrics,
    chunk: &[(usize, &'a Entry)],
    jobs: &[Job],
    batch_id: &str,
    outcome: Result<DeleteReport, AwsError>,
) -> Vec<(usize, &'a Entry, Result<(), DeleteError>)> {
    let report = match outcome {
        Ok(r) => r,
        Err(e) => return request_failed(bucket, chunk, jobs, batch_id, e),
    };
    let deleted: HashSet<(&str, &str)> = report
        .deleted
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let errors: HashMap<(&str, &str), &EntryError> = report
        .errors
        .iter()
        .map(|x| ((x.key.as_str(), x.version_id.as_str()), x))
        .collect();
    chunk
        .iter()
        .map(|(i, entry)| {
            let origin = &jobs[*i].origin;
            let id = (entry.key.as_str(), entry.version_id.as_str());
            if deleted.contains(&id) {
                metrics.purge.entry_deleted(match entry.delete_marker {
                    true => EntryKind::DeleteMarker,
                    false => EntryKind::Version,
                });
                audit(bucket, entry, origin, AuditAction::Deleted { batch_id });
                return (*i, *entry, Ok(()));
            }
            let err = not_deleted(bucket, entry, errors.get(&id).copied());
            let error = &err.to_string();
            audit(
                bucket,
                entry,
                origin,
                AuditAction::Failed { batch_id, error },
            );
            (*i, *entry, Err(err))
        })
        .collect()
}

/// The request failed as a whole: its entries may or may not be deleted.
fn request_failed<'a>(
    bucket: &Bucket,
    chunk: &[(usize, &'a Entry)],
    jobs: &[Job],
    batch_id: &str,
    e: AwsError,
) -> Vec<(usize, &'a Entry, Result<(), DeleteError>)> {
    let e = Arc::new(e);
    error!(error = %e, batch_id, entries = chunk.len(),
           "DeleteObjects failed; its entries may or may not be deleted and are decided again on retry");
    let error = &e.to_string();
    chunk
        .iter()
        .map(|(i, entry)| {
            let action = AuditAction::Failed { batch_id, error };
            audit(bucket, entry, &jobs[*i].origin, action);
            (*i, *entry, Err(DeleteError::Request(e.clone())))
        })
        .collect()
}

/// Why an entry the request did not confirm deleted is not: its own error, or none at all.
fn not_deleted(bucket: &Bucket, entry: &Entry, error: Option<&EntryError>) -> DeleteError {
    match error {
        Some(x) => DeleteError::Entry(Box::new(EntryFailure {
            bucket: bucket.name.clone(),
            key: x.key.clone(),
            version_id: x.version_id.clone(),
            code: x.code.clone(),
            message: x.message.clone(),
        })),
        None => DeleteError::Unconfirmed {
            bucket: bucket.name.clone(),
            key: entry.key.clone(),
            version_id: entry.version_id.clone(),
        },
    }
}

/// One audit line for `entry` (see [`super::audit`]).
fn audit(bucket: &Bucket, entry: &Entry, origin: &Origin, action: AuditAction) {
    AuditLine {
        bucket: &bucket.name,
        entry,
        origin,
        action,
    }
    .record();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Says when it is dropped.
    struct Signal(Option<oneshot::Sender<()>>);

    impl Drop for Signal {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }

    // A consumer's slot rides on the guard: it must come back when the deletion is queued, not
    // when DeleteObjects answers, or the next message waits a whole round trip for nothing.
    #[tokio::test(flavor = "current_thread")]
    async fn the_hold_is_released_when_the_deletion_is_handed_over_not_when_it_is_answered() {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let metrics = Metrics::new().unwrap();
        let bucket = Bucket::new(aws_sdk_s3::Client::from_conf(conf), "t", metrics.clone());
        let deciding = Deciding::default();
        let deleter = Deleter::spawn(bucket, metrics, deciding.clone());
        let (tx, mut released) = oneshot::channel();
        let guard = deciding.enter(Some(Box::new(Signal(Some(tx)))));
        let entry = Entry {
            key: "a.txt".into(),
            version_id: "v1".into(),
            delete_marker: false,
            last_modified: None,
        };
        let origin = Origin {
            reason: "test".into(),
            message_id: "m".into(),
        };
        let delete = deleter.delete(vec![entry], origin, guard, None);
        tokio::pin!(delete);
        // One poll queues the job; the deleting task has not even run yet on this thread.
        assert!(futures::poll!(&mut delete).is_pending());
        assert!(
            released.try_recv().is_ok(),
            "the hold outlived the hand-over"
        );
        assert!(!deciding.pending_before(deciding.watermark()));
    }
}
