//! Small JSON documents in the state bucket, written with conditional requests: a document is
//! created with `If-None-Match: *` (exactly one creator wins) and replaced with `If-Match` on
//! the ETag read (a writer that lost track of it loses the write). This is how replicas agree
//! on who does what, and how work survives a restart.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Condition, Put};
use crate::clock::SharedClock;
use crate::health::TaskHandle;

/// The version of the state documents' format this build writes and the newest it reads.
/// Every document carries it as `schema`; one without it was written before the field existed
/// and has the format of version 1. A daemon refuses a newer document rather than misread it:
/// during a rolling update the older pods stop at the documents the newer ones wrote, with an
/// error that says so, instead of acting on fields they do not know.
pub const SCHEMA: u64 = 1;

/// Attempts at a conditional write that S3 answers 409 `ConditionalRequestConflict` (another
/// conditional write to the key in flight), with a doubling pause from 50 ms.
const BUSY_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{uri} is not a valid document: {reason}")]
    Corrupt { uri: String, reason: String },
    #[error(
        "{uri} has state schema {found}, newer than the {known} this version of s3-reconciler \
         reads: it was written by a newer version; finish the upgrade (or roll it back and \
         remove the newer documents) instead of running both"
    )]
    NewerSchema { uri: String, found: u64, known: u64 },
    /// Conditional writes kept losing to other writers.
    #[error("{uri}: conditional writes keep losing to other writers; try again later")]
    Contended { uri: String },
}

impl StoreError {
    pub fn kind(&self) -> crate::labels::ErrorKind {
        match self {
            StoreError::Aws(e) => e.kind,
            StoreError::Corrupt { .. } => crate::labels::ErrorKind::Other,
            StoreError::NewerSchema { .. } => crate::labels::ErrorKind::Invalid,
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
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            uri: self.uri(name),
            reason: e.to_string(),
        };
        let mut doc: Value = serde_json::from_slice(&f.body).map_err(corrupt)?;
        match unversioned(&mut doc) {
            Ok(()) => {}
            Err(Schema::Newer(found)) => {
                return Err(StoreError::NewerSchema {
                    uri: self.uri(name),
                    found,
                    known: SCHEMA,
                });
            }
            Err(Schema::Invalid(v)) => {
                return Err(StoreError::Corrupt {
                    uri: self.uri(name),
                    reason: format!("`schema` is {v}, not a version number"),
                });
            }
        }
        let value = serde_json::from_value(doc).map_err(corrupt)?;
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
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            uri: self.uri(name),
            reason: e.to_string(),
        };
        let doc = Versioned {
            schema: SCHEMA,
            value,
        };
        let body = serde_json::to_vec_pretty(&doc).map_err(corrupt)?;
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

/// Why a document's `schema` stops it from being read.
#[derive(Debug, PartialEq)]
enum Schema {
    Newer(u64),
    Invalid(Value),
}

/// A document as written: its `schema` first, then its own fields in their order.
#[derive(Serialize)]
struct Versioned<'a, T> {
    schema: u64,
    #[serde(flatten)]
    value: &'a T,
}

/// Takes `schema` out of a document read, so its type sees only its own fields: a document
/// without one (written before the field existed) or with a version this build knows reads;
/// a newer one does not.
fn unversioned(doc: &mut Value) -> Result<(), Schema> {
    let Some(fields) = doc.as_object_mut() else {
        return Ok(());
    };
    match fields.remove("schema") {
        None => Ok(()),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=SCHEMA).contains(&n) => Ok(()),
            Some(n) if n > SCHEMA => Err(Schema::Newer(n)),
            _ => Err(Schema::Invalid(v)),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_carry_their_schema_and_newer_ones_are_refused() {
        #[derive(Serialize)]
        struct Doc {
            status: &'static str,
            date: &'static str,
        }
        let doc = Doc {
            status: "done",
            date: "2026-12-01",
        };
        let written = serde_json::to_string(&Versioned {
            schema: SCHEMA,
            value: &doc,
        })
        .unwrap_or_default();
        assert_eq!(
            written,
            format!(r#"{{"schema":{SCHEMA},"status":"done","date":"2026-12-01"}}"#),
            "schema first, the fields after it in their order"
        );
        let mut read: Value = serde_json::from_str(&written).unwrap_or_default();
        assert_eq!(unversioned(&mut read), Ok(()));
        assert_eq!(read, json!({"date": "2026-12-01", "status": "done"}));
        // Written before the field existed: read as version 1.
        let mut old = json!({"date": "2026-12-01"});
        assert_eq!(unversioned(&mut old), Ok(()));
        let mut newer = json!({"schema": SCHEMA + 1, "date": "2026-12-01"});
        assert_eq!(unversioned(&mut newer), Err(Schema::Newer(SCHEMA + 1)));
        for bad in [json!(0), json!("1"), json!(-1), json!(1.5), json!(null)] {
            let mut doc = json!({ "schema": bad.clone() });
            assert_eq!(unversioned(&mut doc), Err(Schema::Invalid(bad)));
        }
    }
}
