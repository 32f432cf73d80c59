//! The shard leases as a sweeper takes, refreshes and reads them: one replica per shard, the
//! checkpoint an interrupted walk resumes from, and each shard's result in a run.

use chrono::Utc;
use tracing::{info, warn};

use super::lease::{self, Lease, LeaseAction, Stats};
use super::shard::{Held, ShardRef, Taken};
use super::sweeper::Sweeper;
use crate::labels::SweepResult;
use crate::store::{StoreError, Written};

impl Sweeper {
    /// Takes the shard's lease for its run.
    pub(super) async fn take_lease(&self, s: &ShardRef<'_>) -> Result<Taken, StoreError> {
        let name = s.lease_name();
        let stored = self.store.get::<Lease>(&name).await?;
        let now = Utc::now();
        let action = match lease::next_action(
            stored.as_ref().map(|s| &s.value),
            now,
            &self.holder,
            self.config.sweep.lease_ttl,
            s.kind,
            s.run_id,
        ) {
            // A lease of the same index in another layout of the run (it was replaced under
            // it) covers other keys: neither its end nor its checkpoint holds for this range.
            LeaseAction::Done | LeaseAction::Resume
                if stored.as_ref().is_some_and(|l| l.value.range != s.range) =>
            {
                LeaseAction::Start
            }
            a => a,
        };
        let (prefix, shard) = (s.prefix, s.index);
        let (lease, written, resumes) = match (action, stored) {
            (LeaseAction::Busy { holder }, _) => {
                info!(%prefix, shard, %holder, "shard being swept by another replica; skipped");
                return Ok(Taken::Busy);
            }
            (LeaseAction::Done, stored) => {
                let result = stored.and_then(|l| l.value.result);
                return Ok(Taken::Done(result.unwrap_or(SweepResult::Completed)));
            }
            (LeaseAction::Resume, Some(st)) => {
                let l = Lease {
                    holder: self.holder.clone(),
                    updated_at: now,
                    ..st.value
                };
                let w = self.store.update(&name, &l, &st.etag).await?;
                (l, w, true)
            }
            (_, stored) => {
                let l = Lease::start(prefix, &s.range, &self.holder, s.run_id, s.kind, now);
                let w = match stored {
                    Some(st) => self.store.update(&name, &l, &st.etag).await?,
                    None => self.store.create(&name, &l).await?,
                };
                (l, w, false)
            }
        };
        Ok(match written {
            Written::Ok { etag } => Taken::Held(Box::new(lease), etag, resumes),
            Written::Conflict => {
                info!(%prefix, shard, "another replica took the shard first; skipped");
                Taken::Busy
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
                warn!(prefix = %at.lease.prefix, shard = %at.name, "lost the sweep lease to another replica; stopping this shard");
                Ok(false)
            }
        }
    }
}
