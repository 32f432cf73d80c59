//! Small JSON documents in the state bucket, written with conditional requests: a document is
//! created with `If-None-Match: *` (exactly one creator wins) and replaced with `If-Match` on
//! the ETag read (a writer that lost track of it loses the write). This is how replicas agree
//! on who does what, and how work survives a restart.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Condition, Put};

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
        Ok(
            match self.bucket.put(&self.key(name), body, condition).await? {
                Put::Written { etag } => Written::Ok { etag },
                Put::Conflict => Written::Conflict,
            },
        )
    }
}
