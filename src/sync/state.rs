//! Per-date claim objects in S3: the coordination between replicas and the memory across
//! restarts (`<state.prefix>claims/YYYY-MM-DD.json`, written conditionally).

use chrono::NaiveDate;

pub use super::claim::{Chunk, Claim, ClaimStatus, ExecStatus};
use crate::aws::s3::Bucket;
use crate::metrics::Metrics;
use crate::store::JsonStore;
pub use crate::store::{StoreError as StateError, Written};

/// A claim as read, with the ETag that guards the next write.
#[derive(Debug, Clone)]
pub struct Stored {
    pub claim: Claim,
    pub etag: String,
}

#[derive(Clone, Debug)]
pub struct StateStore {
    store: JsonStore,
}

impl StateStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str, metrics: Metrics) -> Self {
        StateStore {
            store: JsonStore::new(Bucket::new(client, bucket, metrics), prefix),
        }
    }

    fn name(date: NaiveDate) -> String {
        format!("claims/{}.json", date.format("%Y-%m-%d"))
    }

    /// `s3://bucket/prefix/claims/DATE.json`.
    pub fn uri(&self, date: NaiveDate) -> String {
        self.store.uri(&Self::name(date))
    }

    /// Proves the state bucket is reachable (readiness).
    pub async fn probe(&self) -> Result<(), StateError> {
        self.store.probe().await
    }

    pub async fn get(&self, date: NaiveDate) -> Result<Option<Stored>, StateError> {
        Ok(self
            .store
            .get::<Claim>(&Self::name(date))
            .await?
            .map(|s| Stored {
                claim: s.value,
                etag: s.etag,
            }))
    }

    /// Creates the claim only if none exists.
    pub async fn create(&self, claim: &Claim) -> Result<Written, StateError> {
        self.store.create(&Self::name(claim.date), claim).await
    }

    /// Replaces the claim only if it still has `etag`.
    pub async fn update(&self, claim: &Claim, etag: &str) -> Result<Written, StateError> {
        self.store
            .update(&Self::name(claim.date), claim, etag)
            .await
    }
}
