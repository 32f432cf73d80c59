//! Small JSON documents in the state bucket, written with conditional requests: a document is
//! created with `If-None-Match: *` (exactly one creator wins) and replaced with `If-Match` on
//! the ETag read (a writer that lost track of it loses the write). This is how replicas agree
//! on who does what, and how work survives a restart.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Condition, Put};
use crate::clock::SharedClock;
use crate::health::TaskHandle;

/// Attempts at a conditional write that S3 answers 409 `ConditionalRequestConflict` (another
/// conditional write to the key in flight), with a doubling pause from 50 ms.
const BUSY_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{uri} is not a valid document: {reason}")]
    Corrupt { uri: String, reason: String },
    /// Conditional writes kept losing to other writers.
    #[error("{uri}: conditional writes keep losing to other writers; try again later")]
    Contended { uri: String },
}

impl StoreError {
    pub fn kind(&self) -> crate::labels::ErrorKind {
        match self {
            StoreError::Aws(e) => e.kind,
            StoreError::Corrupt { .. } => crate::labels::ErrorKind::Other,
            StoreError::Contended { .. } => crate::labels::ErrorKind::Precondition,
        }
    }
}

/// A document as read, with the ETag that guards the next write.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub value: T,
    pub etag: String,
}

/// Result of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Ok {
        etag: String,
    },
    /// Someone else wrote first (412 or 409): this writer does not own the document.
    Conflict,
}

/// The documents under one prefix of the state bucket.
#[derive(Clone, Debug)]
pub struct JsonStore {
    bucket: Bucket,
    prefix: String,
}

impl JsonStore {
    pub fn new(bucket: Bucket, prefix: &str) -> Self {
        JsonStore {
            bucket,
            prefix: prefix.to_string(),
        }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn uri(&self, name: &str) -> String {
        self.bucket.uri(&self.key(name))
    }

    /// Proves the state bucket answers (readiness).
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.bucket
            .list_objects(&self.prefix, Some("/"), None)
            .await?;
        Ok(())
    }

    /// Waits until the state bucket answers, `handle` not ready meanwhile (no claim or lease
    /// can be taken without it), looking again every `every`. False if shutdown came first.
    pub async fn wait_until_reachable(
        &self,
        handle: &TaskHandle,
        clock: &SharedClock,
        every: Duration,
        shutdown: &CancellationToken,
    ) -> bool {
        loop {
            match self.probe().await {
                Ok(()) => {
                    handle.set_ready();
                    return true;
                }
                Err(e) => {
                    handle.set_not_ready(e.to_string());
                    warn!(error = %e, "state bucket not reachable; retrying");
                    if shutdown
                        .run_until_cancelled(clock.sleep(every))
                        .await
                        .is_none()
                    {
                        return false;
                    }
                }
            }
        }
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<Stored<T>>, StoreError> {
        let Some(f) = self.bucket.get(&self.key(name)).await? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&f.body).map_err(|e| StoreError::Corrupt {
            uri: self.uri(name),
            reason: e.to_string(),
        })?;
        Ok(Some(Stored {
            value,
            etag: f.etag,
        }))
    }

    /// Creates the document only if none exists.
    pub async fn create<T: Serialize>(&self, name: &str, value: &T) -> Result<Written, StoreError> {
        self.put(name, value, Condition::Create).await
    }

    /// Replaces the document only if it still has `etag`.
    pub async fn update<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        etag: &str,
    ) -> Result<Written, StoreError> {
        self.put(name, value, Condition::Replace(etag)).await
    }

    async fn put<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        condition: Condition<'_>,
    ) -> Result<Written, StoreError> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
            uri: self.uri(name),
            reason: e.to_string(),
        })?;
        let mut pause = Duration::from_millis(50);
        for _ in 1..BUSY_ATTEMPTS {
            match self
                .bucket
                .put(&self.key(name), body.clone(), condition)
                .await?
            {
                Put::Written { etag } => return Ok(Written::Ok { etag }),
                Put::Conflict => return Ok(Written::Conflict),
                Put::Busy => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
        Err(StoreError::Contended {
            uri: self.uri(name),
        })
    }
}

/// A document that says which write made it: after a conditional write whose answer was
/// lost (a timeout, then the SDK's retry answered 412), re-reading it tells whether that write
/// was ours.
pub trait Stamped {
    fn stamp(&self) -> &str;
    fn set_stamp(&mut self, stamp: String);
}

/// A document this process wrote and holds, with the ETag that guards its next write.
#[derive(Debug, Clone)]
pub struct Held<T> {
    store: JsonStore,
    name: String,
    pub value: T,
    etag: String,
}

impl<T: Serialize + DeserializeOwned + Stamped + Clone> Held<T> {
    /// Creates the document; `None` when another writer created it first.
    pub async fn create(
        store: &JsonStore,
        name: &str,
        value: T,
    ) -> Result<Option<Self>, StoreError> {
        Self::write(store, name, value, None).await
    }

    /// Replaces the document read with `etag`; `None` when it changed since.
    pub async fn replace(
        store: &JsonStore,
        name: &str,
        value: T,
        etag: &str,
    ) -> Result<Option<Self>, StoreError> {
        Self::write(store, name, value, Some(etag)).await
    }

    async fn write(
        store: &JsonStore,
        name: &str,
        mut value: T,
        etag: Option<&str>,
    ) -> Result<Option<Self>, StoreError> {
        value.set_stamp(uuid::Uuid::new_v4().simple().to_string());
        let written = match etag {
            Some(e) => store.update(name, &value, e).await?,
            None => store.create(name, &value).await?,
        };
        let etag = match written {
            Written::Ok { etag } => etag,
            Written::Conflict => match store.get::<T>(name).await? {
                // Our write took effect; its answer was lost and a retry got the 412.
                Some(s) if s.value.stamp() == value.stamp() => s.etag,
                _ => return Ok(None),
            },
        };
        Ok(Some(Held {
            store: store.clone(),
            name: name.to_string(),
            value,
            etag,
        }))
    }

    /// Writes the current value; `false` when someone else wrote the document meanwhile
    /// (it is no longer held).
    pub async fn save(&mut self) -> Result<bool, StoreError> {
        let value = self.value.clone();
        match Self::write(&self.store, &self.name, value, Some(&self.etag)).await? {
            Some(h) => {
                *self = h;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn uri(&self) -> String {
        self.store.uri(&self.name)
    }
}
