//! After a date's executions: compare every partition its filters selected on both sides,
//! decide what comes next ([`next_step`], pure), and plan follow-ups for the partitions that
//! are not complete.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tracing::info;

use super::claim::{Chunk, Claim};
use super::events::Verified;
use super::outcome::SyncError;
use super::plan;
use super::runner::Syncer;
use crate::verify::{self, Partition, PartitionReport, Verification};

/// What a verification leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Every object is in the target: success.
    Complete,
    /// Every partition is empty in the source: the writer is late (never a success).
    Empty,
    /// Missing or other-size objects, attempts left: a follow-up now.
    FollowUp,
    /// All there but objects written after their execution started: a follow-up later.
    Late,
    /// Still incomplete and no attempt left.
    GiveUp,
}

/// The decision after a verification of a claim with `attempts` of `max_attempts` used.
pub(crate) fn next_step(v: &Verification, attempts: u32, max_attempts: u32) -> Next {
    let c = v.counts;
    if c.expected == 0 && c.late == 0 {
        return Next::Empty;
    }
    if v.complete() && c.late == 0 {
        return Next::Complete;
    }
    if attempts >= max_attempts {
        return Next::GiveUp;
    }
    if v.complete() {
        Next::Late
    } else {
        Next::FollowUp
    }
}

impl Syncer {
    /// Compares every partition the claim's filters selected, each against the start of the
    /// latest execution that covered it (objects written later are late, not missing).
    pub(crate) async fn verify_claim(
        &self,
        claim: &Claim,
    ) -> Result<(Verification, Vec<PartitionReport>), SyncError> {
        let s = &self.config.sync;
        // Partitions by prefix, each with the latest start of the executions that covered it.
        let mut order: Vec<Partition> = Vec::new();
        let mut latest: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
        for chunk in &claim.chunks {
            let began = chunk.launched_at.or(chunk.started_at);
            for p in plan::partitions_of(s, &claim.window, [chunk.filter.as_str()]) {
                match latest.get_mut(&p.prefix) {
                    Some(at) => *at = (*at).max(began),
                    None => {
                        latest.insert(p.prefix.clone(), began);
                        order.push(p);
                    }
                }
            }
        }
        let parts: Vec<(Partition, Option<DateTime<Utc>>)> = order
            .into_iter()
            .map(|p| {
                let at = latest.get(&p.prefix).copied().flatten();
                (p, at)
            })
            .collect();
        let reports = match verify::partitions(&self.source, &self.target, &parts).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.sync.verification_failed();
                return Err(SyncError::Verify(e));
            }
        };
        let latest_attempt = claim.chunks.iter().map(|c| c.attempt).max().unwrap_or(1);
        let files: i64 = claim
            .chunks
            .iter()
            .filter(|c| c.attempt == latest_attempt)
            .map(|c| c.files_transferred)
            .sum();
        let mut v = Verification::summarize(&reports, Some(files));
        v.at = self.clock.now();
        Verified {
            date: claim.date,
            verification: &v,
        }
        .record(&self.metrics, self.health.as_ref());
        Ok((v, reports))
    }

    /// Adds chunks whose Includes cover only the partitions the last verification found
    /// incomplete or late: the next attempt.
    pub(crate) fn add_follow_up(
        &self,
        claim: &mut Claim,
        reports: &[PartitionReport],
    ) -> Result<(), SyncError> {
        let wanted: Vec<String> = reports
            .iter()
            .filter(|r| !r.complete() || r.counts.late > 0)
            .map(|r| r.pattern.clone())
            .collect();
        let filters =
            plan::chunk(&wanted, self.max_filter_len).map_err(|source| SyncError::Plan {
                date: claim.date,
                source,
            })?;
        claim.attempts += 1;
        info!(
            partitions = wanted.len(),
            filters = filters.len(),
            attempt = claim.attempts,
            "follow-up execution for the incomplete partitions"
        );
        claim
            .chunks
            .extend(filters.into_iter().map(|f| Chunk::new(f, claim.attempts)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Counts;

    fn v(expected: u64, missing: u64, late: u64) -> Verification {
        Verification {
            at: Utc::now(),
            partitions: 2,
            incomplete_partitions: usize::from(missing > 0),
            counts: Counts {
                expected,
                present: expected - missing,
                missing,
                late,
                ..Counts::default()
            },
            transferred_nothing: false,
            missing_keys: Vec::new(),
        }
    }

    #[test]
    fn what_a_verification_leads_to() {
        assert_eq!(next_step(&v(10, 0, 0), 1, 3), Next::Complete);
        // Every partition empty: the writer is late, not a success.
        assert_eq!(next_step(&v(0, 0, 0), 1, 3), Next::Empty);
        assert_eq!(next_step(&v(10, 2, 0), 1, 3), Next::FollowUp);
        assert_eq!(next_step(&v(10, 2, 0), 3, 3), Next::GiveUp);
        // Late objects are not final: a follow-up later, or incomplete once attempts are out.
        assert_eq!(next_step(&v(10, 0, 4), 1, 3), Next::Late);
        assert_eq!(
            next_step(&v(0, 0, 4), 1, 3),
            Next::Late,
            "only late objects"
        );
        assert_eq!(next_step(&v(10, 0, 4), 3, 3), Next::GiveUp);
        assert_eq!(next_step(&v(10, 1, 4), 1, 3), Next::FollowUp);
    }
}
