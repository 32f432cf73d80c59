//! Per-date claim objects in S3: the coordination between replicas and the memory across
//! restarts (`<state.prefix>claims/YYYY-MM-DD.json`, written conditionally, stamped).

use chrono::NaiveDate;

pub use super::claim::{Chunk, Claim, ClaimStatus, ExecStatus};
use crate::aws::s3::Bucket;
use crate::metrics::Metrics;
pub use crate::store::{Held, JsonStore, StoreError, Stored};

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

    /// The documents under the state prefix (the task lock lives there too).
    pub(crate) fn documents(&self) -> &JsonStore {
        &self.store
    }

    /// `s3://bucket/prefix/claims/DATE.json`.
    pub fn uri(&self, date: NaiveDate) -> String {
        self.store.uri(&Self::name(date))
    }

    /// Proves the state bucket is reachable (readiness).
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.store.probe().await
    }

    pub async fn get(&self, date: NaiveDate) -> Result<Option<Stored<Claim>>, StoreError> {
        self.store.get::<Claim>(&Self::name(date)).await
    }

    /// Creates the claim only if none exists; `None` when another runner created it first.
    pub async fn create(&self, claim: Claim) -> Result<Option<Held<Claim>>, StoreError> {
        Held::create(&self.store, &Self::name(claim.date), claim).await
    }

    /// Replaces the claim read with `etag`; `None` when it changed since.
    pub async fn replace(
        &self,
        claim: Claim,
        etag: &str,
    ) -> Result<Option<Held<Claim>>, StoreError> {
        let name = Self::name(claim.date);
        Held::replace(&self.store, &name, claim, etag).await
    }
}
