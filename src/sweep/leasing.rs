//! The prefix leases as a sweeper takes, refreshes and reads them: one replica per prefix,
//! the checkpoint an interrupted sweep resumes from, and each prefix's result in a run.

use chrono::Utc;
use tracing::{info, warn};

use super::lease::{self, Lease, LeaseAction, LeaseStatus, RunKind, Stats};
use super::sweeper::{Held, Sweeper};
use crate::labels::SweepResult;
use crate::store::{StoreError, Written};

impl Sweeper {
    /// How `prefix`'s walk ended in run `run_id`, if someone completed it.
    pub(super) async fn completed_result(&self, prefix: &str, run_id: &str) -> Option<SweepResult> {
        match self.store.get::<Lease>(&lease::name(prefix)).await {
            Ok(Some(l)) if l.value.run_id == run_id && l.value.status == LeaseStatus::Completed => {
                Some(l.value.result.unwrap_or(SweepResult::Completed))
            }
            _ => None,
        }
    }

    /// Whether every prefix this process did not finish has been completed in `run_id` by
    /// someone else by now (another replica held it).
    pub(super) async fn all_completed(&self, unfinished: &[String], run_id: &str) -> bool {
        for prefix in unfinished {
            if self.completed_result(prefix, run_id).await.is_none() {
                return false;
            }
        }
        true
    }

    /// Takes `prefix`'s lease for run `run_id`: the lease and its ETag, whether it resumes, or
    /// `None` if another replica holds it or it is already done in this run.
    pub(super) async fn take_lease(
        &self,
        prefix: &str,
        kind: RunKind,
        run_id: &str,
    ) -> Result<Option<(Lease, String, bool)>, StoreError> {
        let name = lease::name(prefix);
        let stored = self.store.get::<Lease>(&name).await?;
        let now = Utc::now();
        let action = lease::next_action(
            stored.as_ref().map(|s| &s.value),
            now,
            &self.holder,
            self.config.sweep.lease_ttl,
            kind,
            run_id,
        );
        let (lease, written, resumes) = match (action, stored) {
            (LeaseAction::Busy { holder }, _) => {
                info!(%prefix, %holder, "prefix being swept by another replica; skipped");
                return Ok(None);
            }
            (LeaseAction::Done, _) => {
                info!(%prefix, run_id, "prefix already swept in this run; skipped");
                return Ok(None);
            }
            (LeaseAction::Resume, Some(s)) => {
                let l = Lease {
                    holder: self.holder.clone(),
                    updated_at: now,
                    ..s.value
                };
                let w = self.store.update(&name, &l, &s.etag).await?;
                (l, w, true)
            }
            (_, stored) => {
                let l = Lease::start(prefix, &self.holder, run_id, kind, now);
                let w = match stored {
                    Some(s) => self.store.update(&name, &l, &s.etag).await?,
                    None => self.store.create(&name, &l).await?,
                };
                (l, w, false)
            }
        };
        Ok(match written {
            Written::Ok { etag } => Some((lease, etag, resumes)),
            Written::Conflict => {
                info!(%prefix, "another replica took the prefix first; skipped");
                None
            }
        })
    }

    /// Refreshes the lease with the checkpoint and this session's stats; `false` when another
    /// replica holds it now.
    pub(super) async fn save(&self, at: &mut Held, session: &Stats) -> Result<bool, StoreError> {
        let mut doc = at.lease.clone();
        doc.updated_at = Utc::now();
        doc.stats.add(session);
        match self.store.update(&at.name, &doc, &at.etag).await? {
            Written::Ok { etag } => {
                at.etag = etag;
                at.lease.updated_at = doc.updated_at;
                Ok(true)
            }
            Written::Conflict => {
                warn!(prefix = %at.lease.prefix, "lost the sweep lease to another replica; stopping this prefix");
                Ok(false)
            }
        }
    }
}
