//! A date's claim: the record of who syncs it, with which filters and executions, and how it
//! ended; and the pure state machine that decides what a runner does with it.

use std::fmt;
use std::time::Duration;

use crate::store::Stamped;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::verify::Verification;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClaimStatus {
    Running,
    Success,
    Failed,
    /// Nothing to sync: no project, or none left after the include/exclude globs, or every
    /// partition empty. Retried like a failure (the writer may be late, or the globs wrong),
    /// never a success.
    Empty,
    /// Every object was there, but some were written after their execution started: a
    /// follow-up for their partitions is planned and runs at `retry_at`, then the date is
    /// verified again before it can be a success.
    Late,
}

pub use crate::aws::datasync::ExecStatus;

/// One filter of a date's plan and the execution that ran it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Chunk {
    pub filter: String,
    pub patterns: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExecStatus>,
    #[serde(default)]
    pub files_transferred: i64,
    #[serde(default)]
    pub bytes_transferred: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When its execution started (DataSync's StartTime once known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it left the task's queue and began (DataSync's LaunchTime): the timeout counts
    /// from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<DateTime<Utc>>,
    /// Written to the claim before StartTaskExecution and sent as the execution's tag
    /// `s3-reconciler:start`: after a crash or a lost answer, the execution it started (if
    /// any) is found by it instead of being started again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_token: Option<String>,
    /// The attempt that added it: follow-ups for incomplete partitions come after the first.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

impl Chunk {
    pub fn new(filter: String, attempt: u32) -> Chunk {
        Chunk {
            patterns: filter.split('|').count(),
            filter,
            execution_arn: None,
            status: None,
            files_transferred: 0,
            bytes_transferred: 0,
            error: None,
            started_at: None,
            launched_at: None,
            start_token: None,
            attempt,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claim {
    pub date: NaiveDate,
    pub status: ClaimStatus,
    pub holder: String,
    /// The holding process (a holder id is a host name, which two processes can share: the
    /// daemon and a `kubectl exec … sync` in its pod).
    #[serde(default)]
    pub holder_nonce: String,
    /// Which write made this version of the claim (see [`Stamped`]).
    #[serde(default)]
    pub stamp: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The dates whose partitions the filters cover (the date and its lookback window).
    #[serde(default)]
    pub window: Vec<NaiveDate>,
    #[serde(default)]
    pub projects: usize,
    #[serde(default)]
    pub chunks: Vec<Chunk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last verification of the date's partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// A failed or empty date is retried from then on (absent: at once, or never when its
    /// attempts are used up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
}

impl Stamped for Claim {
    fn stamp(&self) -> &str {
        &self.stamp
    }

    fn set_stamp(&mut self, stamp: String) {
        self.stamp = stamp;
    }
}

impl Claim {
    /// Patterns in all the claim's filters.
    pub fn patterns(&self) -> usize {
        self.chunks.iter().map(|c| c.patterns).sum()
    }

    /// Failed or empty with attempts left, or late: the scheduler runs it again.
    pub(crate) fn retryable(&self, max_attempts: u32) -> bool {
        match self.status {
            ClaimStatus::Failed | ClaimStatus::Empty => self.attempts < max_attempts,
            ClaimStatus::Late => true,
            ClaimStatus::Running | ClaimStatus::Success => false,
        }
    }

    /// When the scheduler should look at this date again by itself: a retry when due, and a
    /// running claim once it would go stale (its holder may be gone: a rollout, a kill).
    pub(crate) fn wake_at(&self, max_attempts: u32, ttl: Duration) -> Option<DateTime<Utc>> {
        match self.status {
            ClaimStatus::Running => Some(
                self.updated_at
                    + chrono::Duration::from_std(ttl).ok()?
                    + chrono::Duration::seconds(1),
            ),
            _ if self.retryable(max_attempts) => self.retry_at.or(Some(self.updated_at)),
            _ => None,
        }
    }
}

/// When a date that ended failed or empty after `attempts` attempts is retried: `interval`
/// after the first, doubling with each further one (at most a day); `None` once `max_attempts`
/// are used up.
pub fn retry_at(
    ended_at: DateTime<Utc>,
    attempts: u32,
    interval: Duration,
    max_attempts: u32,
) -> Option<DateTime<Utc>> {
    if attempts >= max_attempts {
        return None;
    }
    let factor = 1u32 << attempts.saturating_sub(1).min(16);
    let wait = interval
        .saturating_mul(factor)
        .min(Duration::from_secs(24 * 3600));
    Some(ended_at + chrono::Duration::from_std(wait).ok()?)
}

/// The rules a runner applies to an existing claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClaimPolicy<'a> {
    /// This process's nonce: only a claim carrying it is this process's own.
    pub nonce: &'a str,
    /// A running claim not refreshed for this long is abandoned.
    pub ttl: Duration,
    /// Attempts before a failed date is given up.
    pub max_attempts: u32,
    /// A manual run: re-run dates already synced or given up.
    pub force: bool,
}

/// Why a runner leaves a date alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skip {
    AlreadySynced,
    GaveUp {
        attempts: u32,
    },
    HeldBy {
        holder: String,
    },
    /// Failed or empty earlier; its retry is not due yet.
    RetryLater {
        at: DateTime<Utc>,
    },
    /// Lost a conditional write to another runner.
    ClaimedElsewhere,
    /// The claim changed under us while we held it.
    Lost,
    /// Another runner has the DataSync task (one execution per task at a time).
    TaskBusy {
        holder: String,
        date: NaiveDate,
    },
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::AlreadySynced => f.write_str("already synced"),
            Skip::GaveUp { attempts } => write!(f, "gave up after {attempts} attempt(s)"),
            Skip::HeldBy { holder } => write!(f, "being synced by {holder}"),
            Skip::RetryLater { at } => write!(f, "retry due at {}", at.to_rfc3339()),
            Skip::ClaimedElsewhere => f.write_str("claimed by another runner"),
            Skip::Lost => f.write_str("claim lost"),
            Skip::TaskBusy { holder, date } => {
                write!(f, "the DataSync task is busy with {date} for {holder}")
            }
        }
    }
}

/// What a runner does about a date, given its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClaimAction {
    /// No claim yet: plan and create one (attempt 1).
    Create,
    Skip(Skip),
    /// This process's own running claim: follow its executions.
    Resume,
    /// A late date's follow-up is due: run it and verify again.
    FollowUp,
    /// Another holder's running claim went stale: take it over and follow its executions.
    TakeOver {
        previous_holder: String,
    },
    /// A finished claim to run again (failed, or forced): plan afresh as attempt `attempt`.
    Retry {
        attempt: u32,
    },
}

/// The claim state machine.
pub(crate) fn next_action(
    claim: Option<&Claim>,
    now: DateTime<Utc>,
    holder: &str,
    policy: &ClaimPolicy,
) -> ClaimAction {
    let Some(claim) = claim else {
        return ClaimAction::Create;
    };
    let ended = matches!(claim.status, ClaimStatus::Failed | ClaimStatus::Empty);
    if ended && !policy.force && claim.attempts >= policy.max_attempts {
        return ClaimAction::Skip(Skip::GaveUp {
            attempts: claim.attempts,
        });
    }
    if (ended || claim.status == ClaimStatus::Late)
        && !policy.force
        && let Some(at) = claim.retry_at.filter(|at| now < *at)
    {
        return ClaimAction::Skip(Skip::RetryLater { at });
    }
    match claim.status {
        ClaimStatus::Success if !policy.force => ClaimAction::Skip(Skip::AlreadySynced),
        ClaimStatus::Late => ClaimAction::FollowUp,
        ClaimStatus::Success | ClaimStatus::Failed | ClaimStatus::Empty => ClaimAction::Retry {
            attempt: claim.attempts + 1,
        },
        ClaimStatus::Running => {
            let idle = (now - claim.updated_at).to_std().unwrap_or_default();
            // Our own only when this very process wrote it: a host name is no proof.
            if claim.holder == holder && claim.holder_nonce == policy.nonce {
                ClaimAction::Resume
            } else if idle > policy.ttl {
                ClaimAction::TakeOver {
                    previous_holder: claim.holder.clone(),
                }
            } else {
                ClaimAction::Skip(Skip::HeldBy {
                    holder: claim.holder.clone(),
                })
            }
        }
    }
}

/// What to do with one chunk of a claim being executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChunkStep {
    /// Its execution succeeded.
    Done,
    /// Never started, or its execution failed: start one.
    Start,
    /// An execution is recorded and not finished: follow it, do not start another.
    Follow(String),
    /// A start with this token may have happened (the process died, or its answer was lost,
    /// before the ARN was recorded): adopt that execution if it exists, else start.
    Find(String),
}

pub(crate) fn chunk_step(c: &Chunk) -> ChunkStep {
    match (&c.status, &c.execution_arn, &c.start_token) {
        (Some(ExecStatus::Success), _, _) => ChunkStep::Done,
        (Some(ExecStatus::Error), _, _) | (_, None, None) => ChunkStep::Start,
        // A start was attempted and its answer never recorded: find that execution first.
        (_, None, Some(token)) => ChunkStep::Find(token.clone()),
        (_, Some(arn), _) => ChunkStep::Follow(arn.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 9, 1, min, 0).unwrap()
    }

    fn claim(status: ClaimStatus, holder: &str, attempts: u32, updated_min: u32) -> Claim {
        Claim {
            date: NaiveDate::from_ymd_opt(2024, 3, 8).unwrap(),
            status,
            holder: holder.into(),
            holder_nonce: "n1".into(),
            stamp: String::new(),
            attempts,
            created_at: at(0),
            updated_at: at(updated_min),
            window: vec![],
            projects: 1,
            chunks: vec![],
            error: None,
            verification: None,
            retry_at: None,
        }
    }

    fn due(mut c: Claim, min: u32) -> Option<Claim> {
        c.retry_at = Some(at(min));
        Some(c)
    }

    const POLICY: ClaimPolicy = ClaimPolicy {
        nonce: "n1",
        ttl: Duration::from_secs(600),
        max_attempts: 3,
        force: false,
    };

    fn forced() -> ClaimPolicy<'static> {
        ClaimPolicy {
            force: true,
            ..POLICY
        }
    }

    #[test]
    fn every_transition_of_the_claim_state_machine() {
        use ClaimAction::{Create, Resume, Retry, TakeOver};
        use ClaimStatus::{Failed, Running, Success};
        let now = at(30);
        let cases: Vec<(Option<Claim>, ClaimPolicy<'_>, ClaimAction)> = vec![
            (None, POLICY, Create),
            (None, forced(), Create),
            (
                Some(claim(Success, "a", 1, 5)),
                POLICY,
                ClaimAction::Skip(Skip::AlreadySynced),
            ),
            (
                Some(claim(Success, "a", 1, 5)),
                forced(),
                Retry { attempt: 2 },
            ),
            (Some(claim(Failed, "a", 1, 5)), POLICY, Retry { attempt: 2 }),
            (Some(claim(Failed, "b", 2, 5)), POLICY, Retry { attempt: 3 }),
            (
                Some(claim(Failed, "a", 3, 5)),
                POLICY,
                ClaimAction::Skip(Skip::GaveUp { attempts: 3 }),
            ),
            (
                Some(claim(Failed, "a", 3, 5)),
                forced(),
                Retry { attempt: 4 },
            ),
            // A retry waits until it is due, unless forced; an empty day is retried the
            // same way, and given up the same way.
            (
                due(claim(Failed, "a", 1, 5), 31),
                POLICY,
                ClaimAction::Skip(Skip::RetryLater { at: at(31) }),
            ),
            (
                due(claim(Failed, "a", 1, 5), 30),
                POLICY,
                Retry { attempt: 2 },
            ),
            (
                due(claim(Failed, "a", 1, 5), 31),
                forced(),
                Retry { attempt: 2 },
            ),
            (
                due(claim(ClaimStatus::Empty, "a", 2, 5), 45),
                POLICY,
                ClaimAction::Skip(Skip::RetryLater { at: at(45) }),
            ),
            (
                due(claim(ClaimStatus::Empty, "a", 2, 5), 20),
                POLICY,
                Retry { attempt: 3 },
            ),
            (
                due(claim(ClaimStatus::Empty, "a", 3, 5), 20),
                POLICY,
                ClaimAction::Skip(Skip::GaveUp { attempts: 3 }),
            ),
            // Our own running claim, fresh or stale: a restart resumes it.
            (Some(claim(Running, "me", 1, 29)), POLICY, Resume),
            (Some(claim(Running, "me", 1, 0)), POLICY, Resume),
            // Someone else's fresh claim is theirs, even for a manual run.
            (
                Some(claim(Running, "b", 1, 25)),
                POLICY,
                ClaimAction::Skip(Skip::HeldBy { holder: "b".into() }),
            ),
            (
                Some(claim(Running, "b", 1, 25)),
                forced(),
                ClaimAction::Skip(Skip::HeldBy { holder: "b".into() }),
            ),
            // Exactly the TTL is not yet stale; past it, take it over.
            (
                Some(claim(Running, "b", 1, 20)),
                POLICY,
                ClaimAction::Skip(Skip::HeldBy { holder: "b".into() }),
            ),
            (
                Some(claim(Running, "b", 1, 19)),
                POLICY,
                TakeOver {
                    previous_holder: "b".into(),
                },
            ),
            // Our host name, another process (a manual run in our pod, or our previous life):
            // not ours until it goes stale.
            (
                Some(claim(Running, "me", 1, 25)),
                ClaimPolicy {
                    nonce: "n2",
                    ..POLICY
                },
                ClaimAction::Skip(Skip::HeldBy {
                    holder: "me".into(),
                }),
            ),
            (
                Some(claim(Running, "me", 1, 19)),
                ClaimPolicy {
                    nonce: "n2",
                    ..POLICY
                },
                TakeOver {
                    previous_holder: "me".into(),
                },
            ),
            // A late date's follow-up runs when due, forced or not, whatever its attempts.
            (
                due(claim(ClaimStatus::Late, "a", 2, 5), 31),
                POLICY,
                ClaimAction::Skip(Skip::RetryLater { at: at(31) }),
            ),
            (
                due(claim(ClaimStatus::Late, "a", 3, 5), 30),
                POLICY,
                ClaimAction::FollowUp,
            ),
        ];
        for (claim, policy, want) in cases {
            assert_eq!(
                next_action(claim.as_ref(), now, "me", &policy),
                want,
                "{claim:?} {policy:?}"
            );
        }
    }

    #[test]
    fn retries_wait_the_interval_then_double_until_attempts_run_out() {
        let t = at(0);
        let m15 = Duration::from_secs(900);
        let after = |attempts| retry_at(t, attempts, m15, 4).map(|r| (r - t).num_minutes());
        assert_eq!(after(1), Some(15));
        assert_eq!(after(2), Some(30));
        assert_eq!(after(3), Some(60));
        assert_eq!(after(4), None, "the last attempt is not retried");
        // Capped at a day, and no overflow however many attempts are allowed.
        assert_eq!(
            retry_at(t, 40, m15, 100).map(|r| (r - t).num_hours()),
            Some(24)
        );
        let c = claim(ClaimStatus::Failed, "a", 2, 0);
        assert!(c.retryable(3));
        assert!(!c.retryable(2));
        assert!(!claim(ClaimStatus::Success, "a", 1, 0).retryable(3));
        assert!(claim(ClaimStatus::Empty, "a", 1, 0).retryable(3));
        assert!(claim(ClaimStatus::Late, "a", 9, 0).retryable(3));
    }

    #[test]
    fn the_scheduler_wakes_for_due_retries_and_claims_going_stale() {
        let ttl = Duration::from_secs(600);
        let running = claim(ClaimStatus::Running, "b", 1, 5);
        assert_eq!(
            running.wake_at(3, ttl),
            Some(at(15) + chrono::Duration::seconds(1))
        );
        let failed = due(claim(ClaimStatus::Failed, "a", 1, 5), 20).unwrap();
        assert_eq!(failed.wake_at(3, ttl), Some(at(20)));
        assert_eq!(claim(ClaimStatus::Failed, "a", 3, 5).wake_at(3, ttl), None);
        assert_eq!(claim(ClaimStatus::Success, "a", 1, 5).wake_at(3, ttl), None);
    }

    #[test]
    fn chunk_steps() {
        let mut c = Chunk::new("/a/*|/b/*".into(), 1);
        assert_eq!(c.patterns, 2);
        assert_eq!(chunk_step(&c), ChunkStep::Start);
        c.execution_arn = Some("arn:x".into());
        c.status = Some(ExecStatus::Started);
        assert_eq!(chunk_step(&c), ChunkStep::Follow("arn:x".into()));
        c.status = Some(ExecStatus::Unknown("SOMETHING_NEW".into()));
        assert_eq!(chunk_step(&c), ChunkStep::Follow("arn:x".into()));
        c.status = Some(ExecStatus::Error);
        assert_eq!(chunk_step(&c), ChunkStep::Start);
        c.status = Some(ExecStatus::Success);
        assert_eq!(chunk_step(&c), ChunkStep::Done);
        // A start token without an ARN: the start may have happened.
        let mut c = Chunk::new("/a/*".into(), 1);
        c.start_token = Some("t1".into());
        assert_eq!(chunk_step(&c), ChunkStep::Find("t1".into()));
        c.execution_arn = Some("arn:y".into());
        c.status = Some(ExecStatus::Queued);
        assert_eq!(chunk_step(&c), ChunkStep::Follow("arn:y".into()));
    }
}
