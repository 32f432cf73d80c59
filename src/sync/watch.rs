//! Following one DataSync execution to its end: its status recorded in the claim at every
//! poll, its timeout counted from LaunchTime.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::claim::{Chunk, ExecStatus};
use super::outcome::SyncError;
use super::runner::{Hold, Syncer};
use crate::aws::datasync::Execution;

/// How following one execution ended.
pub(crate) enum Watch {
    Success,
    Error(String),
    Timeout,
    Lost,
    Interrupted,
}

impl Syncer {
    /// Follows chunk `i`'s execution to its end, refreshing the claim on every poll (the
    /// heartbeat that keeps it from going stale).
    pub(crate) async fn watch(
        &self,
        hold: &mut Hold,
        i: usize,
        arn: &str,
        shutdown: &CancellationToken,
    ) -> Result<Watch, SyncError> {
        let s = &self.config.sync;
        let watching_since = self.clock.now();
        let tracked = self
            .health
            .as_ref()
            .map(|h| h.track("DescribeTaskExecution", arn));
        let mut unknown_logged = false;
        loop {
            match self.datasync.describe(arn).await {
                Ok(ex) => {
                    if let Some(t) = &tracked {
                        t.progress();
                    }
                    let chunk = &mut hold.claim.value.chunks[i];
                    match observe(chunk, ex, arn, &mut unknown_logged) {
                        Observed::Running => {}
                        Observed::Failed(reason) => return Ok(Watch::Error(reason)),
                        Observed::Succeeded { files, bytes } => {
                            self.metrics.sync.execution_transferred(files, bytes);
                            return Ok(match self.save(hold).await? {
                                true => Watch::Success,
                                false => Watch::Lost,
                            });
                        }
                    }
                }
                // A slow or throttled API is no reason to abandon an execution that runs on.
                Err(e) if e.is_transient() => {
                    warn!(error = %e, "could not read the execution's status; will try again");
                }
                // The execution exists and may be running: the claim stays as it is.
                Err(e) => return Err(SyncError::Unsure(e)),
            }
            if !self.save(hold).await? {
                return Ok(Watch::Lost);
            }
            if ran_out(
                &hold.claim.value.chunks[i],
                watching_since,
                self.clock.now(),
                s.timeout,
            ) {
                return Ok(Watch::Timeout);
            }
            if !self.poll_pause(shutdown).await {
                return Ok(Watch::Interrupted);
            }
        }
    }
}

/// What one look at an execution showed.
enum Observed {
    Running,
    Succeeded { files: i64, bytes: i64 },
    Failed(String),
}

/// Records what DataSync said about the chunk's execution in the chunk.
fn observe(chunk: &mut Chunk, ex: Execution, arn: &str, unknown_logged: &mut bool) -> Observed {
    chunk.status = Some(ex.status.clone());
    chunk.started_at = ex.started_at.or(chunk.started_at);
    chunk.launched_at = ex.launched_at.or(chunk.launched_at);
    match &ex.status {
        ExecStatus::Success => {
            chunk.files_transferred = ex.files_transferred;
            chunk.bytes_transferred = ex.bytes_transferred;
            Observed::Succeeded {
                files: ex.files_transferred,
                bytes: ex.bytes_transferred,
            }
        }
        ExecStatus::Error => {
            let (code, detail) = ex.error.unwrap_or_default();
            let reason = format!("{code}: {detail}");
            chunk.error = Some(reason.clone());
            Observed::Failed(reason)
        }
        ExecStatus::Unknown(raw) => {
            if !*unknown_logged {
                warn!(execution_arn = %arn, status = %raw, "unknown DataSync status; treating it as still running");
                *unknown_logged = true;
            }
            Observed::Running
        }
        _ => Observed::Running,
    }
}

/// Whether the chunk's execution has run for `timeout`. The clock runs from when the
/// execution left the task's queue (LaunchTime), not from when it was started, also for a
/// runner that resumes following it; a queued one has not started running.
fn ran_out(
    chunk: &Chunk,
    watching_since: DateTime<Utc>,
    now: DateTime<Utc>,
    timeout: std::time::Duration,
) -> bool {
    if chunk.launched_at.is_none() && chunk.status == Some(ExecStatus::Queued) {
        return false;
    }
    let since = chunk
        .launched_at
        .or(chunk.started_at)
        .unwrap_or(watching_since);
    (now - since).to_std().unwrap_or_default() >= timeout
}
