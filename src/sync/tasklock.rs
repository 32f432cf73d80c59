//! One runner drives the DataSync task at a time. DataSync itself would queue a second
//! execution, and its timeout clock would then include the wait; in `filter_mode = "task"` two
//! runners' UpdateTask and StartTaskExecution could swap Includes. So a runner holds the task's
//! lock (`<state.prefix>tasks/<task-id>.json`, conditional writes) from before it starts an
//! execution until its date ends, refreshing it as it refreshes its claim. A lock not refreshed
//! for `claim_ttl` is abandoned.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Held, JsonStore, Stamped, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskLock {
    pub task_arn: String,
    pub holder: String,
    #[serde(default)]
    pub holder_nonce: String,
    /// The date being run.
    pub date: NaiveDate,
    pub updated_at: DateTime<Utc>,
    /// Let go: the next runner may take it at once.
    #[serde(default)]
    pub released: bool,
    #[serde(default)]
    pub stamp: String,
}

impl Stamped for TaskLock {
    fn stamp(&self) -> &str {
        &self.stamp
    }

    fn set_stamp(&mut self, stamp: String) {
        self.stamp = stamp;
    }
}

/// Whether a runner may take the task, given its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LockAction {
    Take,
    /// Another runner has it, until `until` at the latest (when the lock goes stale).
    Busy {
        holder: String,
        date: NaiveDate,
        until: DateTime<Utc>,
    },
}

/// The lock's state machine (pure).
pub(crate) fn lock_action(
    lock: Option<&TaskLock>,
    holder: &str,
    nonce: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> LockAction {
    let Some(l) = lock else {
        return LockAction::Take;
    };
    let until = l.updated_at + chrono::Duration::from_std(ttl).unwrap_or_default();
    if l.released || (l.holder == holder && l.holder_nonce == nonce) || now > until {
        return LockAction::Take;
    }
    LockAction::Busy {
        holder: l.holder.clone(),
        date: l.date,
        until,
    }
}

/// The lock document's name for a task ARN (`…:task/task-0123…`).
pub(crate) fn name(task_arn: &str) -> String {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("tasks/{safe}.json")
}

/// Takes the task's lock for `date`, or says who has it.
pub(crate) async fn acquire(
    store: &JsonStore,
    task_arn: &str,
    holder: &str,
    nonce: &str,
    date: NaiveDate,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<Result<Held<TaskLock>, LockAction>, StoreError> {
    let name = name(task_arn);
    let stored = store.get::<TaskLock>(&name).await?;
    match lock_action(stored.as_ref().map(|s| &s.value), holder, nonce, now, ttl) {
        LockAction::Take => {}
        busy => return Ok(Err(busy)),
    }
    let mine = TaskLock {
        task_arn: task_arn.to_string(),
        holder: holder.to_string(),
        holder_nonce: nonce.to_string(),
        date,
        updated_at: now,
        released: false,
        stamp: String::new(),
    };
    let held = match &stored {
        Some(s) => Held::replace(store, &name, mine, &s.etag).await?,
        None => Held::create(store, &name, mine).await?,
    };
    Ok(match held {
        Some(h) => Ok(h),
        // Someone took it between our read and our write: theirs now.
        None => match store.get::<TaskLock>(&name).await? {
            Some(s) => Err(LockAction::Busy {
                holder: s.value.holder.clone(),
                date: s.value.date,
                until: s.value.updated_at + chrono::Duration::from_std(ttl).unwrap_or_default(),
            }),
            None => Err(LockAction::Busy {
                holder: "another runner".into(),
                date,
                until: now,
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 9, 1, min, 0).unwrap()
    }

    fn lock(holder: &str, nonce: &str, updated: u32, released: bool) -> TaskLock {
        TaskLock {
            task_arn: "arn:aws:datasync:r:1:task/task-1".into(),
            holder: holder.into(),
            holder_nonce: nonce.into(),
            date: chrono::NaiveDate::from_ymd_opt(2024, 3, 8).unwrap(),
            updated_at: at(updated),
            released,
            stamp: String::new(),
        }
    }

    #[test]
    fn the_task_is_taken_only_when_free_or_abandoned() {
        let ttl = Duration::from_secs(600);
        let now = at(30);
        let take = |l: Option<TaskLock>| lock_action(l.as_ref(), "me", "n1", now, ttl);
        assert_eq!(take(None), LockAction::Take);
        assert_eq!(
            take(Some(lock("b", "x", 29, true))),
            LockAction::Take,
            "released"
        );
        assert_eq!(
            take(Some(lock("me", "n1", 29, false))),
            LockAction::Take,
            "ours"
        );
        assert_eq!(
            take(Some(lock("b", "x", 19, false))),
            LockAction::Take,
            "stale"
        );
        assert!(matches!(
            take(Some(lock("b", "x", 25, false))),
            LockAction::Busy { ref holder, until, .. } if holder == "b" && until == at(35)
        ));
        // Our host name in another process is not us.
        assert!(matches!(
            take(Some(lock("me", "n2", 25, false))),
            LockAction::Busy { .. }
        ));
        assert_eq!(
            name("arn:aws:datasync:ap-northeast-2:111:task/task-0123abc"),
            "tasks/task-0123abc.json"
        );
    }
}
